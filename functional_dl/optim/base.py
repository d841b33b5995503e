"""The optimizer contract: gradient transformations, chained, under a two-call user surface.

A :class:`GradientTransformation` is a pair of pure functions grouped so they can be named::

    init(params) -> state
    update(updates, state, params) -> (updates, state)

It maps updates to updates (gradients in, a step to add to the params out), keeping whatever it
needs in ``state``: a ``<Name>State`` NamedTuple, or :class:`EmptyState`. Transformations compose
with :func:`chain`; a named optimizer (``sgd``, ``adam``) is a chain and nothing more.

The user surface is an :class:`Optimizer` that owns the params inside its state::

    state = opt.init(params)
    state, params = opt.update(state, grads)

``OptimizerState`` holds the params, the transformation's state and the step count. Every piece of
state is made of NamedTuples, tuples, str-keyed mappings, arrays, ints, floats and bools only (no
functions: schedules and masks live in the transformation), so it checkpoints as data and
:func:`functional_dl.checkpoint.load` restores it against the template ``opt.init(params)``.
Nothing is mutated: each update returns new arrays and a new state.

The learning rate in force is part of the state (``current_learning_rate(state)``), and
hyperparameters become changeable between steps when stored in the state by
``inject_hyperparams``; :mod:`functional_dl.optim.hyperparams` explains the design.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from functional_dl.errors import ParamsError
from functional_dl.params import FrozenParams, adopt, check_structure, freeze
from functional_dl.types import Params

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "Optimizer",
    "OptimizerState",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateFn",
    "apply_updates",
    "check_grads",
    "optimizer",
]

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)

#: A learning-rate (or any hyperparameter) schedule: a plain function of the step count.
Schedule = Callable[[int], float]


class TransformInitFn(Protocol[S_co]):
    """``(params) -> state``."""

    def __call__(self, params: Params, /) -> S_co: ...


class TransformUpdateFn(Protocol[S]):
    """``(updates, state, params) -> (updates, state)``."""

    def __call__(self, updates: Params, state: S, params: Params, /) -> tuple[Params, S]: ...


class GradientTransformation(NamedTuple, Generic[S]):
    """A gradient transformation: pure ``init`` and ``update`` grouped so they can be named.

    Attributes:
        init: ``(params) -> state``.
        update: ``(updates, state, params) -> (updates, state)``; returns new arrays, modifies
            nothing.
    """

    init: TransformInitFn[S]
    update: TransformUpdateFn[S]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


class OptimizerState(NamedTuple, Generic[S]):
    """Everything an optimizer carries between steps.

    Attributes:
        params: the current parameters (frozen).
        inner: the state of the gradient transformation (a NamedTuple, or a tuple of them).
        step: how many updates have been applied.
    """

    params: Params
    inner: S
    step: int


class Optimizer(NamedTuple, Generic[S]):
    """The user surface: ``state = opt.init(params)``, ``state, params = opt.update(state, grads)``.

    Attributes:
        init: ``(params) -> OptimizerState``.
        update: ``(state, grads) -> (state, params)``; the new params are also ``state.params``.
        transform: the gradient transformation this optimizer applies.
    """

    init: Callable[[Params], OptimizerState[S]]
    update: Callable[[OptimizerState[S], Params], tuple[OptimizerState[S], Params]]
    transform: GradientTransformation[S]


def check_grads(grads: Params, params: Params) -> None:
    """Raise :class:`~functional_dl.errors.ParamsError` unless ``grads`` matches ``params``.

    Checks keys, shapes and dtypes; costs a few comparisons per array when all is well.
    """
    if grads.keys() != params.keys():
        check_structure(grads, params, "grads")
    for name, p in params.items():
        g = grads[name]
        if type(g) is not np.ndarray:
            raise ParamsError("grads", f"{name!r} must be a NumPy array, got {type(g).__name__}")
        if g.shape != p.shape or g.dtype != p.dtype:
            check_structure(grads, params, "grads")


def apply_updates(params: Params, updates: Params) -> FrozenParams:
    """``params + updates`` key by key, as new read-only arrays of the params' dtypes.

    An update of a wider dtype is cast back to the parameter's dtype (float32 params stay float32).
    """
    out = {}
    for name, p in params.items():
        u = updates[name]
        # The plain ``+`` is the common case and dispatches faster than np.add with dtype/casting.
        out[name] = p + u if u.dtype == p.dtype else np.add(p, u, dtype=p.dtype, casting="same_kind")
    return adopt(out)


def _optimizer_init(transform: GradientTransformation[S], params: Params, /) -> OptimizerState[S]:
    frozen = params if isinstance(params, FrozenParams) else freeze(params)
    scalars = sorted(k for k, p in frozen.items() if p.ndim == 0)
    if scalars:
        # Transformations update arrays in place once they own them, which NumPy scalars (what
        # arithmetic on 0-d arrays returns) do not allow; layers never make 0-d parameters.
        raise ParamsError("params", f"{scalars} are 0-d: store a scalar parameter with shape (1,)")
    return OptimizerState(frozen, transform.init(frozen), 0)


def _optimizer_update(
    transform: GradientTransformation[S], state: OptimizerState[S], grads: Params, /
) -> tuple[OptimizerState[S], Params]:
    if not isinstance(state, OptimizerState):
        raise TypeError(
            f"optimizer.update: expected (state, grads) with state from opt.init, got {type(state).__name__}"
        )
    params = state.params
    check_grads(grads, params)
    updates, inner = transform.update(grads, state.inner, params)
    new_params = apply_updates(params, updates)
    return OptimizerState(new_params, inner, state.step + 1), new_params


def optimizer(transform: GradientTransformation[S]) -> Optimizer[S]:
    """The user surface over a gradient transformation whose updates are *added* to the params.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim import sgd
        >>> opt = sgd(0.1)
        >>> state = opt.init({"w": np.array([1.0, 2.0])})
        >>> state, params = opt.update(state, {"w": np.array([1.0, -1.0])})
        >>> params["w"], state.step
        (array([0.9, 2.1]), 1)
    """
    return Optimizer(
        init=partial(_optimizer_init, transform),
        update=partial(_optimizer_update, transform),
        transform=transform,
    )
