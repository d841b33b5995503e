"""Basic gradient transformations: scaling, learning rates, momentum, weight decay and composition.

Each factory returns a :class:`~functional_dl.optim.base.GradientTransformation`. Update rules are
written with ``g`` the incoming update (the gradient at the start of a chain), ``u`` the outgoing
update, ``p`` the current parameter, ``t`` the 1-based step and ``lr`` the learning rate. All
updates are new arrays; nothing passed in is modified, and no update is an array kept in the state
(the ownership rule of :mod:`functional_dl.optim.base`).

Scalars are kept as Python floats so that float32 updates stay float32 (NumPy treats a Python
float as weakly typed, a ``np.float64`` as float64).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._argcheck import bounded, flag, rate, real, text
from functional_dl.errors import DomainError, ParamsError
from functional_dl.optim.base import (
    EmptyState,
    GradientTransformation,
    Optimizer,
    Schedule,
    check_slots,
    check_state,
    transformation_of,
)
from functional_dl.optim.groups import Mask, check_mask, selected_keys
from functional_dl.types import Array, Params

__all__ = [
    "ChainState",
    "ScaleByLearningRateState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "chain",
    "empty_init",
    "named_chain",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "trace",
]


#: The state of a :func:`chain`: its parts' states, in order.
ChainState = tuple[object, ...]


def empty_init(params: Params, /) -> EmptyState:
    """``init`` of a transformation that keeps no state."""
    return EmptyState()


def _scale_update(
    updates: Params, state: EmptyState, params: Params, /, *, factor: float
) -> tuple[Params, EmptyState]:
    check_state("scale", state, EmptyState)
    return {k: g * factor for k, g in updates.items()}, state


def scale(factor: float) -> GradientTransformation[EmptyState]:
    """Multiply updates by a constant.

    Update rule: ``u = factor * g``.

    Example:
        >>> import numpy as np
        >>> t = scale(0.5)
        >>> t.update({"w": np.array([2.0])}, t.init({}), {})[0]["w"]
        array([1.])

    Raises:
        DomainError: when ``factor`` is not a finite real number.
    """
    factor = real(factor, "factor", "scale")
    return GradientTransformation(empty_init, partial(_scale_update, factor=float(factor)), elementwise=True)


class ScaleByScheduleState(NamedTuple):
    """Steps taken so far, at which the schedule is evaluated."""

    step: int


def _schedule_init(params: Params, /) -> ScaleByScheduleState:
    return ScaleByScheduleState(0)


def _schedule_update(
    updates: Params, state: ScaleByScheduleState, params: Params, /, *, schedule: Schedule
) -> tuple[Params, ScaleByScheduleState]:
    check_state("scale_by_schedule", state, ScaleByScheduleState)
    factor = float(schedule(state.step))
    return {k: g * factor for k, g in updates.items()}, ScaleByScheduleState(state.step + 1)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation[ScaleByScheduleState]:
    """Multiply updates by a schedule of the step.

    Update rule: ``u_t = schedule(t - 1) * g_t`` (evaluated at the number of earlier steps).

    Raises:
        DomainError: when ``schedule`` is not callable.
    """
    if not callable(schedule):
        raise DomainError("scale_by_schedule", f"schedule must be a function of the step, got {schedule!r}")
    return GradientTransformation(
        _schedule_init, partial(_schedule_update, schedule=schedule), elementwise=True
    )


class ScaleByLearningRateState(NamedTuple):
    """The learning rate in force.

    Attributes:
        step: updates applied so far.
        learning_rate: the rate the *next* update will use (``schedule(step)`` for a schedule).
    """

    step: int
    learning_rate: float


def _lr_init(params: Params, /, *, learning_rate: float | Schedule) -> ScaleByLearningRateState:
    lr = float(learning_rate(0)) if callable(learning_rate) else float(learning_rate)
    return ScaleByLearningRateState(0, lr)


def _lr_const_update(
    updates: Params, state: ScaleByLearningRateState, params: Params, /, *, learning_rate: float
) -> tuple[Params, ScaleByLearningRateState]:
    check_state("scale_by_learning_rate", state, ScaleByLearningRateState)
    factor = -learning_rate
    return {k: g * factor for k, g in updates.items()}, ScaleByLearningRateState(
        state.step + 1, learning_rate
    )


def _lr_schedule_update(
    updates: Params, state: ScaleByLearningRateState, params: Params, /, *, schedule: Schedule
) -> tuple[Params, ScaleByLearningRateState]:
    check_state("scale_by_learning_rate", state, ScaleByLearningRateState)
    count = state.step
    factor = -float(schedule(count))
    return {k: g * factor for k, g in updates.items()}, ScaleByLearningRateState(
        count + 1, float(schedule(count + 1))
    )


def scale_by_learning_rate(
    learning_rate: float | Schedule,
) -> GradientTransformation[ScaleByLearningRateState]:
    """The descent step, recording the learning rate in force in its state.

    Update rule: ``u_t = -lr_t * g_t``.

    Args:
        learning_rate: a number, or a schedule ``count -> lr`` evaluated at the number of earlier
            updates (so the first update uses ``schedule(0)``).

    The state's ``learning_rate`` is the rate the next update will apply; read it with
    :func:`functional_dl.optim.current_learning_rate`. To *change* it between steps, build the
    optimizer with :func:`functional_dl.optim.inject_hyperparams`.

    Raises:
        DomainError: when ``learning_rate`` is neither a schedule nor a finite real number >= 0.
    """
    learning_rate = rate(learning_rate, "learning_rate", "scale_by_learning_rate")
    if callable(learning_rate):
        return GradientTransformation(
            partial(_lr_init, learning_rate=learning_rate),
            partial(_lr_schedule_update, schedule=learning_rate),
            elementwise=True,
        )
    lr = float(learning_rate)
    return GradientTransformation(
        partial(_lr_init, learning_rate=lr), partial(_lr_const_update, learning_rate=lr), elementwise=True
    )


class TraceState(NamedTuple):
    """The momentum buffer and the number of updates that built it.

    Attributes:
        step: updates applied so far (the dampened rule starts the buffer differently at step 0).
        trace: the momentum buffer ``m`` (same keys and shapes as the params).
    """

    step: int
    trace: Mapping[str, Array]


def _trace_init(params: Params, /) -> TraceState:
    return TraceState(0, {k: np.zeros_like(p) for k, p in params.items()})


def _check_trace(state: TraceState, updates: Params) -> None:
    check_state("trace", state, TraceState)
    check_slots("trace", "trace", state.trace, updates)


def _trace_update(
    updates: Params, state: TraceState, params: Params, /, *, decay: float, nesterov: bool
) -> tuple[Params, TraceState]:
    _check_trace(state, updates)
    old = state.trace
    new: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g in updates.items():
        m = old[k] * decay
        m += g
        new[k] = m
        # The buffer stays in the state, so the update is a new array (the ownership rule).
        out[k] = g + m * decay if nesterov else m.copy()
    return out, TraceState(state.step + 1, new)


def _dampened_trace_update(
    updates: Params, state: TraceState, params: Params, /, *, decay: float, keep: float
) -> tuple[Params, TraceState]:
    # torch.optim.SGD starts the buffer at the first gradient itself, undampened. Without
    # dampening, decay * 0 + g is that already, so only this rule needs the step; keeping it
    # apart leaves the undampened loop as lean as it was.
    _check_trace(state, updates)
    first = state.step == 0
    old = state.trace
    new: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g in updates.items():
        if first:
            m = g.copy()
        else:
            m = old[k] * decay
            m += g * keep
        new[k] = m
        out[k] = m.copy()  # the buffer stays in the state
    return out, TraceState(state.step + 1, new)


def trace(decay: float, nesterov: bool = False, dampening: float = 0.0) -> GradientTransformation[TraceState]:
    """Momentum, as ``torch.optim.SGD`` defines it.

    Update rule::

        m_1 = g_1                                       (the first step is never dampened)
        m_t = decay * m_{t-1} + (1 - dampening) * g_t   (t > 1)
        u_t = m_t                                       (heavy ball)
        u_t = g_t + decay * m_t                         (nesterov=True)

    With ``dampening=0`` this is ``m_t = decay * m_{t-1} + g_t`` from ``m_0 = 0``.

    Args:
        decay: the momentum coefficient.
        nesterov: use Nesterov's lookahead ``g_t + decay * m_t`` as the update.
        dampening: the fraction of each gradient after the first kept *out* of the buffer.

    Raises:
        DomainError: for ``nesterov`` with non-zero ``dampening`` (PyTorch refuses it too), a
            negative ``decay``, a ``dampening`` outside ``[0, 1]``, a non-bool ``nesterov``, or a
            value that is not a finite real number.

    Example:
        >>> import numpy as np
        >>> t = trace(0.9, dampening=0.5)
        >>> state = t.init({"w": np.zeros(1)})
        >>> u, state = t.update({"w": np.array([2.0])}, state, {})
        >>> u["w"], t.update({"w": np.array([2.0])}, state, {})[0]["w"]
        (array([2.]), array([2.8]))
    """
    decay = bounded(decay, "decay", "trace", 0.0)
    nesterov = flag(nesterov, "nesterov", "trace")
    dampening = bounded(dampening, "dampening", "trace", 0.0, 1.0)
    if nesterov and dampening:
        raise DomainError("trace", f"Nesterov momentum needs zero dampening, got dampening={dampening}")
    if dampening:
        return GradientTransformation(
            _trace_init,
            partial(_dampened_trace_update, decay=float(decay), keep=1.0 - float(dampening)),
            elementwise=True,
        )
    return GradientTransformation(
        _trace_init, partial(_trace_update, decay=float(decay), nesterov=nesterov), elementwise=True
    )


def _decay_update(
    updates: Params, state: EmptyState, params: Params, /, *, weight_decay: float, mask: Mask | None
) -> tuple[Params, EmptyState]:
    check_state("add_decayed_weights", state, EmptyState)
    if mask is None:
        return {k: g + params[k] * weight_decay for k, g in updates.items()}, state
    chosen = selected_keys(mask, updates, "add_decayed_weights")
    return {k: g + params[k] * weight_decay if k in chosen else g for k, g in updates.items()}, state


def add_decayed_weights(weight_decay: float, mask: Mask | None = None) -> GradientTransformation[EmptyState]:
    """Add decayed weights to the updates of the parameters the mask selects.

    Update rule: ``u = g + weight_decay * p`` where the mask selects, ``u = g`` elsewhere.

    Before an adaptive scaling (``chain(add_decayed_weights(wd), scale_by_adam())``) this is L2
    regularisation, PyTorch's ``weight_decay`` of ``SGD``/``Adam``; after it and before the learning
    rate, it is decoupled weight decay (AdamW).

    Args:
        weight_decay: the decay coefficient.
        mask: which parameters decay: a predicate on the key or a mapping ``key -> bool``
            (:func:`functional_dl.optim.weights_only` leaves biases and norm scales alone);
            ``None`` decays every parameter.

    Raises:
        DomainError: when ``weight_decay`` is negative or not a finite real number, or ``mask`` is
            neither ``None``, a function of the key nor a mapping.
    """
    weight_decay = bounded(weight_decay, "weight_decay", "add_decayed_weights", 0.0)
    check_mask(mask, "add_decayed_weights")
    return GradientTransformation(
        empty_init,
        partial(_decay_update, weight_decay=float(weight_decay), mask=mask),
        # A mask reads keys: on a fused vector it would select nothing.
        elementwise=mask is None,
    )


def _chain_init(transforms: tuple[GradientTransformation[Any], ...], params: Params, /) -> ChainState:
    return tuple(t.init(params) for t in transforms)


def _chain_update(
    transforms: tuple[GradientTransformation[Any], ...],
    updates: Params,
    state: ChainState,
    params: Params,
    /,
) -> tuple[Params, ChainState]:
    if type(state) is not tuple or len(state) != len(transforms):
        got = f"{len(state)} entries" if type(state) is tuple else f"a {type(state).__name__}"
        raise ParamsError("chain", f"expected a tuple of {len(transforms)} states (one per part), got {got}")
    new_state = []
    for transform, inner in zip(transforms, state, strict=True):
        updates, new_inner = transform.update(updates, inner, params)
        new_state.append(new_inner)
    return updates, tuple(new_state)


def chain(*transforms: GradientTransformation[Any] | Optimizer[Any]) -> GradientTransformation[ChainState]:
    """Apply transformations in order; the state is the tuple of their states.

    Update rule: ``u = t_n(... t_2(t_1(g)))``.

    A named optimizer counts as its transformation (``opt.transform``), as in optax:
    ``chain(clip_by_global_norm(1.0), adam(1e-3))`` clips, then takes Adam's step, with the same
    numbers as ``chain(clip_by_global_norm(1.0), scale_by_adam(), scale_by_learning_rate(1e-3))``.
    The chain is elementwise when every part is.

    Raises:
        DomainError: for a part that is neither a transformation nor a named optimizer.

    Example:
        >>> import numpy as np
        >>> t = chain(scale(2.0), scale(-0.5))
        >>> updates, _ = t.update({"w": np.array([3.0])}, t.init({}), {})
        >>> updates["w"]
        array([-3.])
    """
    parts = tuple(transformation_of(t, "chain", i) for i, t in enumerate(transforms))
    return GradientTransformation(
        partial(_chain_init, parts), partial(_chain_update, parts), all(t.elementwise for t in parts)
    )


def _named_chain_init(
    transforms: tuple[tuple[str, GradientTransformation[Any]], ...], params: Params, /
) -> dict[str, object]:
    return {name: t.init(params) for name, t in transforms}


def _named_chain_update(
    transforms: tuple[tuple[str, GradientTransformation[Any]], ...],
    updates: Params,
    state: Mapping[str, object],
    params: Params,
    /,
) -> tuple[Params, dict[str, object]]:
    names = [name for name, _ in transforms]
    if not isinstance(state, Mapping) or state.keys() != set(names):
        got = sorted(state) if isinstance(state, Mapping) else f"a {type(state).__name__}"
        raise ParamsError("named_chain", f"expected a state keyed by {names}, got {got}")
    new_state: dict[str, object] = {}
    for name, transform in transforms:
        updates, new_state[name] = transform.update(updates, state[name], params)
    return updates, new_state


def named_chain(
    *transforms: tuple[str, GradientTransformation[Any] | Optimizer[Any]],
) -> GradientTransformation[dict[str, object]]:
    """Like :func:`chain`, but the state is a mapping from each transformation's name to its state.

    A part may be a named optimizer, as in :func:`chain`.

    Update rule: ``u = t_n(... t_2(t_1(g)))``, as :func:`chain`.

    Example:
        >>> import numpy as np
        >>> t = named_chain(("double", scale(2.0)), ("lr", scale_by_learning_rate(0.1)))
        >>> state = t.init({"w": np.zeros(1)})
        >>> sorted(state), state["lr"].learning_rate
        (['double', 'lr'], 0.1)
    """
    if not all(isinstance(part, tuple) and len(part) == 2 for part in transforms):
        raise DomainError(
            "named_chain", f"each part must be a (name, transformation) pair, got {transforms!r}"
        )
    names = [text(name, "each name", "named_chain") for name, _ in transforms]
    if len(set(names)) != len(names):
        raise DomainError("named_chain", f"names must be unique, got {names}")
    parts = tuple((name, transformation_of(t, "named_chain", i)) for i, (name, t) in enumerate(transforms))
    return GradientTransformation(
        partial(_named_chain_init, parts),
        partial(_named_chain_update, parts),
        all(t.elementwise for _, t in parts),
    )
