"""Per-coordinate adaptive scalings without momentum correction: RMSprop, Adagrad, Adadelta.

Each follows the corresponding ``torch.optim`` class term by term (where ``eps`` goes, what the
accumulators start at), so trajectories agree with PyTorch's to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import numpy as np

from functional_dl._argcheck import bounded, flag
from functional_dl.optim.base import GradientTransformation, check_slots, check_state, moment_zeros, widened
from functional_dl.types import Array, Params

__all__ = [
    "ScaleByAdadeltaState",
    "ScaleByAdagradState",
    "ScaleByRmsState",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_rms",
]


def _decayed_square(g: Array, old: Array, decay: float) -> Array:
    # decay * old + (1 - decay) * g^2, with one allocation (torch's mul_ then addcmul_).
    v = g * g
    v *= 1.0 - decay
    v += old * decay
    return v


class ScaleByRmsState(NamedTuple):
    """RMSprop's running mean of ``g^2`` and (centered only, else empty) of ``g``."""

    nu: Mapping[str, Array]
    mu: Mapping[str, Array]


def _rms_init(params: Params, /, *, centered: bool) -> ScaleByRmsState:
    zeros = {k: moment_zeros(p) for k, p in params.items()}
    return ScaleByRmsState(zeros, dict(zeros) if centered else {})


def _rms_update(
    updates: Params, state: ScaleByRmsState, params: Params, /, *, alpha: float, eps: float, centered: bool
) -> tuple[Params, ScaleByRmsState]:
    check_state("scale_by_rms", state, ScaleByRmsState)
    check_slots("scale_by_rms", "nu", state.nu, updates)
    if centered:
        check_slots("scale_by_rms", "mu", state.mu, updates)
    c = 1.0 - alpha
    nu: dict[str, Array] = {}
    mu: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, raw in updates.items():
        g = widened(raw)
        v = nu[k] = _decayed_square(g, state.nu[k], alpha)
        if centered:
            m = g - state.mu[k]
            m *= c
            m += state.mu[k]
            mu[k] = m
            d = v - m * m
            d = np.sqrt(d, out=d)
        else:
            d = np.sqrt(v)
        d += eps
        out[k] = np.divide(g, d, out=d)
    return out, ScaleByRmsState(nu, mu)


def scale_by_rms(
    alpha: float = 0.99, eps: float = 1e-8, centered: bool = False
) -> GradientTransformation[ScaleByRmsState]:
    """RMSprop's scaling (Hinton, 2012), as ``torch.optim.RMSprop`` defines it.

    Update rule (``v_0 = m_0 = 0``)::

        v_t = alpha v_{t-1} + (1 - alpha) g_t^2
        u_t = g_t / (sqrt(v_t) + eps)
        centered:  m_t = alpha m_{t-1} + (1 - alpha) g_t,   u_t = g_t / (sqrt(v_t - m_t^2) + eps)

    Raises:
        DomainError: for ``alpha`` outside ``[0, 1]``, a negative ``eps``, a non-bool ``centered``,
            or a value that is not a finite real number.
    """
    where = "scale_by_rms"
    alpha = bounded(alpha, "alpha", where, 0.0, 1.0)
    eps = bounded(eps, "eps", where, 0.0)
    centered = flag(centered, "centered", where)
    return GradientTransformation(
        partial(_rms_init, centered=centered),
        partial(_rms_update, alpha=float(alpha), eps=float(eps), centered=centered),
        elementwise=True,
    )


class ScaleByAdagradState(NamedTuple):
    """Adagrad's running sum of ``g^2``."""

    sum_of_squares: Mapping[str, Array]


def _adagrad_init(params: Params, /, *, initial_accumulator_value: float) -> ScaleByAdagradState:
    return ScaleByAdagradState({k: moment_zeros(p, initial_accumulator_value) for k, p in params.items()})


def _adagrad_update(
    updates: Params, state: ScaleByAdagradState, params: Params, /, *, eps: float
) -> tuple[Params, ScaleByAdagradState]:
    check_state("scale_by_adagrad", state, ScaleByAdagradState)
    check_slots("scale_by_adagrad", "sum_of_squares", state.sum_of_squares, updates)
    acc: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, raw in updates.items():
        g = widened(raw)
        s = g * g
        s += state.sum_of_squares[k]
        acc[k] = s
        d = np.sqrt(s)
        d += eps
        out[k] = np.divide(g, d, out=d)
    return out, ScaleByAdagradState(acc)


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> GradientTransformation[ScaleByAdagradState]:
    """Adagrad's scaling (Duchi et al., 2011), as ``torch.optim.Adagrad`` defines it.

    Update rule: ``s_t = s_{t-1} + g_t^2`` (``s_0 = initial_accumulator_value``),
    ``u_t = g_t / (sqrt(s_t) + eps)``.

    Raises:
        DomainError: for a negative (or non-finite, or non-numeric) ``initial_accumulator_value`` or ``eps``.
    """
    where = "scale_by_adagrad"
    initial_accumulator_value = bounded(initial_accumulator_value, "initial_accumulator_value", where, 0.0)
    eps = bounded(eps, "eps", where, 0.0)
    return GradientTransformation(
        partial(_adagrad_init, initial_accumulator_value=float(initial_accumulator_value)),
        partial(_adagrad_update, eps=float(eps)),
        elementwise=True,
    )


class ScaleByAdadeltaState(NamedTuple):
    """Adadelta's running means of ``g^2`` and of the squared steps ``u^2``."""

    square_avg: Mapping[str, Array]
    acc_delta: Mapping[str, Array]


def _adadelta_init(params: Params, /) -> ScaleByAdadeltaState:
    zeros = {k: moment_zeros(p) for k, p in params.items()}
    return ScaleByAdadeltaState(zeros, dict(zeros))


def _adadelta_update(
    updates: Params, state: ScaleByAdadeltaState, params: Params, /, *, rho: float, eps: float
) -> tuple[Params, ScaleByAdadeltaState]:
    check_state("scale_by_adadelta", state, ScaleByAdadeltaState)
    check_slots("scale_by_adadelta", "square_avg", state.square_avg, updates)
    check_slots("scale_by_adadelta", "acc_delta", state.acc_delta, updates)
    sq: dict[str, Array] = {}
    acc: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, raw in updates.items():
        g = widened(raw)
        v = sq[k] = _decayed_square(g, state.square_avg[k], rho)
        a = state.acc_delta[k]
        std = v + eps
        std = np.sqrt(std, out=std)
        u = a + eps
        u = np.sqrt(u, out=u)
        u /= std
        u *= g
        out[k] = u
        acc[k] = _decayed_square(u, a, rho)
    return out, ScaleByAdadeltaState(sq, acc)


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation[ScaleByAdadeltaState]:
    """Adadelta's scaling (Zeiler, 2012), as ``torch.optim.Adadelta`` defines it.

    Update rule (``v_0 = a_0 = 0``)::

        v_t = rho v_{t-1} + (1 - rho) g_t^2
        u_t = sqrt(a_{t-1} + eps) / sqrt(v_t + eps) * g_t
        a_t = rho a_{t-1} + (1 - rho) u_t^2

    Raises:
        DomainError: for ``rho`` outside ``[0, 1]``, a negative ``eps``, or a value that is not a finite
            real number.
    """
    where = "scale_by_adadelta"
    rho = bounded(rho, "rho", where, 0.0, 1.0)
    eps = bounded(eps, "eps", where, 0.0)
    return GradientTransformation(
        _adadelta_init, partial(_adadelta_update, rho=float(rho), eps=float(eps)), elementwise=True
    )
