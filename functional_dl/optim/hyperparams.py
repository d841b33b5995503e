"""Hyperparameters as state: read the learning rate in force, change hyperparameters between steps.

Design
------
Optimizer state is plain data (it checkpoints), so nothing callable lives in it; hyperparameters
that should be *readable* or *changeable* are stored in it as values:

* Every named optimizer ends in :func:`~functional_dl.optim.transforms.scale_by_learning_rate`,
  whose state records the learning rate the next update will use. :func:`current_learning_rate`
  reads it from an optimizer state (multiplied by any reduce-on-plateau factor), and
  ``state.step`` is the number of updates made.
* :func:`inject_hyperparams` wraps an optimizer factory (``adam``, ``sgd``, or any function
  returning a transformation) so that its numeric hyperparameters live in the state, as 0-d
  float64 arrays under their names. Each update rebuilds the inner transformation from the stored
  values (a few microseconds) and applies it. Values given as schedules are re-evaluated after each
  step; plain numbers stay as they are until :func:`set_hyperparams` returns a state with new ones.
  The inner state is kept, so changing ``learning_rate`` or ``b1`` does not reset Adam's moments.

A changed value must not change the *structure* of the inner state: ``sgd`` with
``momentum=0`` (or ``adam`` with ``weight_decay=0``) builds no momentum buffer (no decay step), so
a later non-zero value would not fit the state. Inject such a hyperparameter with a non-zero
starting value, or pass it through ``static`` to keep it fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np

from functional_dl._argcheck import within
from functional_dl.errors import ArgumentError, DomainError, MissingError, ParamsError
from functional_dl.optim.base import GradientTransformation, Optimizer, Schedule, check_state
from functional_dl.optim.plateau import ReduceOnPlateauState
from functional_dl.optim.state_tree import find_states, replace_states
from functional_dl.optim.transforms import ScaleByLearningRateState
from functional_dl.types import Array, Params

__all__ = [
    "InjectHyperparamsState",
    "current_hyperparams",
    "current_learning_rate",
    "inject_hyperparams",
    "set_hyperparams",
]

S = TypeVar("S")
Factory = Callable[..., GradientTransformation[Any] | Optimizer[Any]]


class InjectHyperparamsState(NamedTuple):
    """Hyperparameters held as values, around the inner transformation's state.

    Attributes:
        step: updates made so far.
        hyperparams: name -> 0-d float64 array, the values the next update will use.
        inner: the inner transformation's state.
    """

    step: int
    hyperparams: Mapping[str, Array]
    inner: object


def _value(x: float) -> Array:
    a = np.array(float(x), dtype=np.float64)
    a.flags.writeable = False
    return a


def _instantiate(
    factory: Factory, static: Mapping[str, object], values: Mapping[str, Array]
) -> GradientTransformation[Any]:
    built = factory(**{k: float(v) for k, v in values.items()}, **static)
    return built.transform if isinstance(built, Optimizer) else built


def _evaluate(hyperparams: Mapping[str, float | Schedule], count: int) -> dict[str, Array]:
    return {k: _value(h(count) if callable(h) else h) for k, h in hyperparams.items()}


def _inject_init(
    factory: Factory,
    static: Mapping[str, object],
    hyperparams: Mapping[str, float | Schedule],
    params: Params,
    /,
) -> InjectHyperparamsState:
    values = _evaluate(hyperparams, 0)
    return InjectHyperparamsState(0, values, _instantiate(factory, static, values).init(params))


def _inject_update(
    factory: Factory,
    updates: Params,
    state: InjectHyperparamsState,
    params: Params,
    /,
    *,
    static: Mapping[str, object],
    hyperparams: Mapping[str, float | Schedule],
) -> tuple[Params, InjectHyperparamsState]:
    check_state("inject_hyperparams", state, InjectHyperparamsState)
    if state.hyperparams.keys() != hyperparams.keys():
        raise ParamsError(
            "inject_hyperparams",
            f"state.hyperparams has {sorted(state.hyperparams)}, expected {sorted(hyperparams)}",
        )
    new, inner = _instantiate(factory, static, state.hyperparams).update(updates, state.inner, params)
    count = state.step + 1
    values = dict(state.hyperparams)
    for k, h in hyperparams.items():
        if callable(h):
            values[k] = _value(h(count))
    return new, InjectHyperparamsState(count, values, inner)


def inject_hyperparams(
    factory: Factory, /, *, static: Mapping[str, object] | None = None, **hyperparams: float | Schedule
) -> GradientTransformation[InjectHyperparamsState]:
    """``factory(**hyperparams, **static)`` with the hyperparameters stored in the state.

    Update rule: ``u_t = factory(**h_t, **static)(g_t)``, where ``h_t`` are the values in the
    state (schedules evaluated at ``t - 1``, or what :func:`set_hyperparams` put there).

    Args:
        factory: an optimizer factory (``adam``) or any function returning a transformation.
        static: arguments passed through unchanged (masks, flags, anything not numeric).
        **hyperparams: numbers, or schedules ``count -> value`` evaluated at each step.

    Raises:
        ArgumentError: (a ``TypeError``) when a hyperparameter is neither a number nor a schedule.
        DomainError: when ``factory`` is not callable, or refuses the starting values (its error,
            under this path).

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim import optimizer, sgd
        >>> opt = optimizer(inject_hyperparams(sgd, learning_rate=0.1))
        >>> state = opt.init({"w": np.ones(1)})
        >>> state = set_hyperparams(state, learning_rate=0.5)
        >>> state, params = opt.update(state, {"w": np.ones(1)})
        >>> params["w"], current_learning_rate(state)
        (array([0.5]), 0.5)
    """
    if not callable(factory):
        raise DomainError(
            "inject_hyperparams", f"factory must be a function returning a transformation, got {factory!r}"
        )
    for name, value in hyperparams.items():
        if isinstance(value, bool) or not (callable(value) or isinstance(value, (int, float))):
            raise ArgumentError(
                "inject_hyperparams", f"{name}={value!r} is not a number or a schedule; pass it in static="
            )
    fixed = dict(static or {})
    hp = dict(hyperparams)
    # Elementwise exactly when what the factory builds is (built once here with the starting values).
    with within("inject_hyperparams"):
        elementwise = _instantiate(factory, fixed, _evaluate(hp, 0)).elementwise
    return GradientTransformation(
        partial(_inject_init, factory, fixed, hp),
        partial(_inject_update, factory, static=fixed, hyperparams=hp),
        elementwise,
    )


def current_hyperparams(state: object) -> dict[str, float]:
    """The injected hyperparameters in force (of the outermost :func:`inject_hyperparams`).

    Raises:
        ParamsError: (a ``ValueError``) when ``state`` holds no injected hyperparameters.
    """
    for found in find_states(state, InjectHyperparamsState):
        return {k: float(v) for k, v in found.hyperparams.items()}
    raise ParamsError(
        "current_hyperparams",
        "no injected hyperparameters in this state: build the optimizer with inject_hyperparams",
    )


def set_hyperparams(state: S, **values: float) -> S:
    """A new state whose injected hyperparameters ``values`` replace the stored ones.

    The next update uses them (for a hyperparameter given as a schedule, only the next update:
    the schedule takes over again after it). ``state`` itself is not modified.

    Raises:
        MissingError: (a ``KeyError``) when no :func:`inject_hyperparams` in ``state`` holds one of
            the names.
    """
    seen: set[str] = set()

    def replace(found: InjectHyperparamsState) -> InjectHyperparamsState:
        names = values.keys() & found.hyperparams.keys()
        seen.update(names)
        merged = {**found.hyperparams, **{k: _value(values[k]) for k in names}}
        return found._replace(hyperparams=merged)

    new = replace_states(state, InjectHyperparamsState, replace)
    missing = values.keys() - seen
    if missing:
        raise MissingError(
            "set_hyperparams",
            f"{sorted(missing)} are not injected hyperparameters of this optimizer; "
            "build it with inject_hyperparams(factory, name=value, ...)",
        )
    return new


def current_learning_rate(state: object) -> float:
    """The learning rate the next update will apply, read from an optimizer state.

    The outermost injected ``learning_rate`` if there is one, else the rate recorded by
    ``scale_by_learning_rate``; multiplied by the factor of every reduce-on-plateau in the state.

    Raises:
        ParamsError: (a ``ValueError``) when the state holds no learning rate, or several different
            ones (parameter groups with their own rates: read those from the groups' states).
    """
    factor = 1.0
    for plateau in find_states(state, ReduceOnPlateauState):
        factor *= plateau.scale
    for injected in find_states(state, InjectHyperparamsState):
        if "learning_rate" in injected.hyperparams:
            return float(injected.hyperparams["learning_rate"]) * factor
    rates = {s.learning_rate for s in find_states(state, ScaleByLearningRateState)}
    if len(rates) != 1:
        raise ParamsError(
            "current_learning_rate",
            "expected one learning rate in the state, found "
            + (f"{len(rates)}: {sorted(rates)}" if rates else "none"),
        )
    return rates.pop() * factor
