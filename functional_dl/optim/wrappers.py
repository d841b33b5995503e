"""Wrappers around a whole transformation: skip bad steps, accumulate micro-steps, average, look ahead.

Each takes an inner transformation or a named optimizer (usually a complete chain ending in the
learning rate, so its updates are steps to add to the params) and keeps the inner state inside
its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._argcheck import bounded, positive_int
from functional_dl.optim.base import (
    GradientTransformation,
    Optimizer,
    check_slots,
    check_state,
    transformation_of,
)
from functional_dl.types import Array, Params

__all__ = [
    "AccumulateGradientsState",
    "ApplyIfFiniteState",
    "EmaParamsState",
    "LookaheadState",
    "accumulate_gradients",
    "apply_if_finite",
    "ema_params",
    "lookahead",
]


def _zeros(updates: Params) -> dict[str, Array]:
    return {k: np.zeros_like(g) for k, g in updates.items()}


class ApplyIfFiniteState(NamedTuple):
    """Counts of skipped steps around the inner state.

    Attributes:
        notfinite_count: consecutive steps skipped up to now (0 after a good step).
        total_notfinite: steps skipped since the start.
        last_finite: whether the last step's updates were all finite.
        inner: the inner transformation's state (unchanged by a skipped step).
    """

    notfinite_count: int
    total_notfinite: int
    last_finite: bool
    inner: object


def _finite_init(inner: GradientTransformation[Any], params: Params, /) -> ApplyIfFiniteState:
    return ApplyIfFiniteState(0, 0, True, inner.init(params))


def _finite_update(
    inner: GradientTransformation[Any], updates: Params, state: ApplyIfFiniteState, params: Params, /
) -> tuple[Params, ApplyIfFiniteState]:
    check_state("apply_if_finite", state, ApplyIfFiniteState)
    if all(np.isfinite(g).all() for g in updates.values()):
        new, inner_state = inner.update(updates, state.inner, params)
        return new, ApplyIfFiniteState(0, state.total_notfinite, True, inner_state)
    skipped = ApplyIfFiniteState(state.notfinite_count + 1, state.total_notfinite + 1, False, state.inner)
    return _zeros(updates), skipped


def apply_if_finite(
    inner: GradientTransformation[Any] | Optimizer[Any],
) -> GradientTransformation[ApplyIfFiniteState]:
    """Skip any step whose incoming updates hold a NaN or an infinity, and count it.

    Update rule: ``u = inner(g)`` if every ``g`` is finite; otherwise ``u = 0`` (the params stay
    as they are) and the inner state is left untouched. The counts are in the state.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim import optimizer, scale_by_learning_rate
        >>> opt = optimizer(apply_if_finite(scale_by_learning_rate(0.1)))
        >>> state = opt.init({"w": np.ones(2)})
        >>> state, params = opt.update(state, {"w": np.array([np.nan, 1.0])})
        >>> params["w"], state.inner.total_notfinite
        (array([1., 1.]), 1)
    """
    # Not elementwise: whether an entry moves depends on every other entry being finite.
    inner = transformation_of(inner, "apply_if_finite")
    return GradientTransformation(partial(_finite_init, inner), partial(_finite_update, inner))


class AccumulateGradientsState(NamedTuple):
    """Gradient accumulation over micro-steps.

    Attributes:
        mini_step: micro-steps accumulated since the last real update (``0 .. every_k - 1``).
        grads: the running sum of the updates of those micro-steps.
        inner: the inner transformation's state.
    """

    mini_step: int
    grads: Mapping[str, Array]
    inner: object


def _accumulate_init(inner: GradientTransformation[Any], params: Params, /) -> AccumulateGradientsState:
    return AccumulateGradientsState(0, {k: np.zeros_like(p) for k, p in params.items()}, inner.init(params))


def _accumulate_update(
    inner: GradientTransformation[Any],
    every_k: int,
    updates: Params,
    state: AccumulateGradientsState,
    params: Params,
    /,
) -> tuple[Params, AccumulateGradientsState]:
    check_state("accumulate_gradients", state, AccumulateGradientsState)
    check_slots("accumulate_gradients", "grads", state.grads, updates)
    total = {k: state.grads[k] + g for k, g in updates.items()}
    if state.mini_step + 1 < every_k:
        return _zeros(updates), AccumulateGradientsState(state.mini_step + 1, total, state.inner)
    mean = {k: s * (1.0 / every_k) for k, s in total.items()}
    new, inner_state = inner.update(mean, state.inner, params)
    return new, AccumulateGradientsState(0, _zeros(updates), inner_state)


def accumulate_gradients(
    inner: GradientTransformation[Any] | Optimizer[Any], every_k: int
) -> GradientTransformation[AccumulateGradientsState]:
    """Apply ``inner`` once every ``every_k`` micro-steps, to the mean of their gradients.

    Update rule: on micro-steps ``1 .. every_k - 1`` of each group ``u = 0`` (the gradient is
    added to a running sum); on micro-step ``every_k``, ``u = inner(mean of the group's g)``.
    ``every_k`` micro-batches of size ``b`` then act like one batch of size ``every_k * b``.

    Raises:
        DomainError: when ``every_k`` is not a positive int, or ``inner`` not a transformation.
    """
    every_k = positive_int(every_k, "every_k", "accumulate_gradients")
    inner = transformation_of(inner, "accumulate_gradients")
    return GradientTransformation(
        partial(_accumulate_init, inner), partial(_accumulate_update, inner, every_k), inner.elementwise
    )


class EmaParamsState(NamedTuple):
    """The exponential moving average of the params after each step.

    Attributes:
        step: steps averaged so far.
        ema: the averaged params (keys, shapes and dtypes of the params).
    """

    step: int
    ema: Mapping[str, Array]


def _ema_init(params: Params, /) -> EmaParamsState:
    return EmaParamsState(0, {k: np.array(p, copy=True) for k, p in params.items()})


def _ema_update(
    updates: Params, state: EmaParamsState, params: Params, /, *, decay: float
) -> tuple[Params, EmaParamsState]:
    check_state("ema_params", state, EmaParamsState)
    check_slots("ema_params", "ema", state.ema, updates)
    ema: dict[str, Array] = {}
    for k, u in updates.items():
        new_p = params[k] + u
        new_p *= 1.0 - decay
        new_p += state.ema[k] * decay
        ema[k] = new_p
    return updates, EmaParamsState(state.step + 1, ema)


def ema_params(decay: float) -> GradientTransformation[EmaParamsState]:
    """Keep an exponential moving average of the parameters; updates pass unchanged.

    Put it last in a chain (after the learning rate), so that ``p + u`` is the new parameter.

    Update rule (``e_0 = p_0``, the initial params): ``e_t = decay * e_{t-1} + (1 - decay) * p_t``,
    ``u = g``. Read the average from the state (``EmaParamsState.ema``); it is what
    ``torch.optim.swa_utils.AveragedModel`` with an EMA averaging function holds.

    Raises:
        DomainError: when ``decay`` is not a real number in ``[0, 1]``.
    """
    decay = bounded(decay, "decay", "ema_params", 0.0, 1.0)
    return GradientTransformation(_ema_init, partial(_ema_update, decay=float(decay)), elementwise=True)


class LookaheadState(NamedTuple):
    """Lookahead's slow weights and the fast optimizer's state.

    Attributes:
        step: fast steps taken so far.
        slow: the slow weights (equal to the params right after each synchronisation).
        inner: the fast (inner) transformation's state.
    """

    step: int
    slow: Mapping[str, Array]
    inner: object


def _lookahead_init(inner: GradientTransformation[Any], params: Params, /) -> LookaheadState:
    return LookaheadState(0, {k: np.array(p, copy=True) for k, p in params.items()}, inner.init(params))


def _lookahead_update(
    inner: GradientTransformation[Any],
    updates: Params,
    state: LookaheadState,
    params: Params,
    /,
    *,
    sync_period: int,
    alpha: float,
) -> tuple[Params, LookaheadState]:
    # The slow weights are read only at a synchronisation: check them on every step, so a foreign
    # state is refused at once, not sync_period steps later.
    check_state("lookahead", state, LookaheadState)
    check_slots("lookahead", "slow", state.slow, updates)
    fast, inner_state = inner.update(updates, state.inner, params)
    count = state.step + 1
    if count % sync_period:
        return fast, LookaheadState(count, state.slow, inner_state)
    slow: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, u in fast.items():
        s = state.slow[k]
        new_slow = params[k] + u  # the fast weights after k steps
        new_slow -= s
        new_slow *= alpha
        new_slow += s
        slow[k] = new_slow
        out[k] = new_slow - params[k]  # moves the (fast) params onto the new slow weights
    return out, LookaheadState(count, slow, inner_state)


def lookahead(
    inner: GradientTransformation[Any] | Optimizer[Any], sync_period: int = 5, alpha: float = 0.5
) -> GradientTransformation[LookaheadState]:
    """Lookahead (Zhang et al., 2019): ``sync_period`` fast steps, then a step of the slow weights.

    Update rule, with ``phi`` the slow and ``theta`` the fast weights (the params)::

        theta_t = theta_{t-1} + inner(g_t)                          on every step
        at t = k * sync_period:  phi <- phi + alpha (theta_t - phi),  theta_t <- phi

    The params carried by the optimizer are the fast weights; right after each synchronisation
    they equal the slow weights (to rounding), which are also in the state (``slow``).

    Raises:
        DomainError: when ``sync_period`` is not a positive int, ``alpha`` not a real number in
            ``[0, 1]``, or ``inner`` not a transformation.
    """
    sync_period = positive_int(sync_period, "sync_period", "lookahead")
    alpha = bounded(alpha, "alpha", "lookahead", 0.0, 1.0)
    inner = transformation_of(inner, "lookahead")
    return GradientTransformation(
        partial(_lookahead_init, inner),
        partial(_lookahead_update, inner, sync_period=sync_period, alpha=float(alpha)),
        inner.elementwise,
    )
