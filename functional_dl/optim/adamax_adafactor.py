"""Adamax (an infinity-norm Adam) and Adafactor (factored second moments), as ``torch.optim``'s.

Adamax (Kingma and Ba, 2015, section 7.1), with ``m_0 = u_0 = 0`` and ``t`` the 1-based step::

    m_t = b1 m_{t-1} + (1 - b1) g_t
    u_t = max(b2 u_{t-1}, |g_t| + eps)
    step_t = m_t / ((1 - b1^t) u_t)

Adafactor (Shazeer and Stern, 2018) in ``torch.optim.Adafactor``'s form, which we follow rather
than optax's (optax adds momentum and update clipping options and takes ``eps`` and the relative
step differently). For a parameter ``p`` with at least two axes, only a row and a column mean of
``g^2`` are kept (``R`` of shape ``(..., rows, 1)``, ``C`` of shape ``(..., 1, cols)``); vectors and
scalars keep the full ``V``. With ``w_t = t^beta2_decay`` (so ``w_1 = 1``)::

    R_t = R_{t-1} + w_t (mean over columns of g_t^2 - R_{t-1})
    C_t = C_{t-1} + w_t (mean over rows of g_t^2 - C_{t-1})
    V_t = R_t C_t / max(mean over rows of R_t, eps1)      (factored)
    V_t = V_{t-1} + w_t (g_t^2 - V_{t-1})                 (vectors and scalars)
    U_t = g_t / sqrt(max(V_t, eps1^2))
    step_t = max(eps2, rms(p_{t-1})) min(lr, 1 / sqrt(t)) U_t / max(1, rms(U_t) / d)

``eps1=None`` is the machine epsilon of the parameter's dtype, as in PyTorch. ``lr`` caps the
relative step ``min(lr, 1 / sqrt(t))``; :func:`scale_by_adafactor` gives the step in units of
``lr`` (its factor is ``min(1, 1 / (lr sqrt(t)))``) so that the named optimizer ends, like every
other, with :func:`~functional_dl.optim.transforms.scale_by_learning_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import numpy as np

from functional_dl._argcheck import bounded
from functional_dl.errors import ParamsError
from functional_dl.optim.adam import moment_decays
from functional_dl.optim.base import GradientTransformation, check_slots, check_state, moment_zeros, widened
from functional_dl.types import Array, Params

__all__ = ["ScaleByAdafactorState", "ScaleByAdamaxState", "scale_by_adafactor", "scale_by_adamax"]


class ScaleByAdamaxState(NamedTuple):
    """Adamax's step count, first moments ``m`` and exponentially weighted infinity norms ``u``."""

    step: int
    mu: Mapping[str, Array]
    inf_norm: Mapping[str, Array]


def _adamax_init(params: Params, /) -> ScaleByAdamaxState:
    zeros = {k: moment_zeros(p) for k, p in params.items()}
    return ScaleByAdamaxState(0, zeros, dict(zeros))


def _adamax_update(
    updates: Params, state: ScaleByAdamaxState, params: Params, /, *, b1: float, b2: float, eps: float
) -> tuple[Params, ScaleByAdamaxState]:
    check_state("scale_by_adamax", state, ScaleByAdamaxState)
    check_slots("scale_by_adamax", "mu", state.mu, updates)
    check_slots("scale_by_adamax", "inf_norm", state.inf_norm, updates)
    t = state.step + 1
    bias_correction = 1.0 - b1**t
    mu: dict[str, Array] = {}
    inf_norm: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g16 in updates.items():
        g = widened(g16)
        m = mu[k] = state.mu[k] + (1.0 - b1) * (g - state.mu[k])  # torch's lerp
        u = inf_norm[k] = np.maximum(state.inf_norm[k] * b2, np.abs(g) + eps)
        out[k] = m / (u * bias_correction)
    return out, ScaleByAdamaxState(t, mu, inf_norm)


def scale_by_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation[ScaleByAdamaxState]:
    """Adamax's scaling, as ``torch.optim.Adamax`` computes it.

    Update rule (``m_0 = u_0 = 0``)::

        m_t = b1 m_{t-1} + (1 - b1) g_t,   u_t = max(b2 u_{t-1}, |g_t| + eps)
        out_t = m_t / ((1 - b1^t) u_t)

    Raises:
        DomainError: for ``b1`` or ``b2`` outside ``[0, 1)``, a negative ``eps``,
            or a value that is not a finite real number.
    """
    where = "scale_by_adamax"
    b1, b2, eps = moment_decays(b1, b2, eps, where)
    return GradientTransformation(
        _adamax_init, partial(_adamax_update, b1=float(b1), b2=float(b2), eps=float(eps)), elementwise=True
    )


class ScaleByAdafactorState(NamedTuple):
    """Adafactor's step count and second-moment estimates.

    Attributes:
        step: steps taken so far.
        row: ``R`` of each parameter with two or more axes, shape ``(..., rows, 1)``.
        col: ``C`` of each such parameter, shape ``(..., 1, cols)``.
        full: ``V`` of each vector or scalar parameter, its shape.
    """

    step: int
    row: Mapping[str, Array]
    col: Mapping[str, Array]
    full: Mapping[str, Array]


def _adafactor_init(params: Params, /) -> ScaleByAdafactorState:
    row = {k: moment_zeros(p[..., :1]) for k, p in params.items() if p.ndim > 1}
    col = {k: moment_zeros(p[..., :1, :]) for k, p in params.items() if p.ndim > 1}
    full = {k: moment_zeros(p) for k, p in params.items() if p.ndim <= 1}
    return ScaleByAdafactorState(0, row, col, full)


def _check_factored_slots(state: ScaleByAdafactorState, updates: Params) -> None:
    """Refuse a state made for another parameter tree: each key in the one slot its rank selects."""
    matrices = {k: g for k, g in updates.items() if g.ndim > 1}
    vectors = {k: g for k, g in updates.items() if g.ndim <= 1}
    if state.row.keys() != matrices.keys() or state.col.keys() != matrices.keys():
        raise ParamsError(
            "scale_by_adafactor",
            f"state.row/col have keys {sorted(state.row)}, expected the updates' keys with two or more "
            f"axes {sorted(matrices)}",
        )
    for k, g in matrices.items():
        if state.row[k].shape != (*g.shape[:-1], 1) or state.col[k].shape != (*g.shape[:-2], 1, g.shape[-1]):
            raise ParamsError(
                "scale_by_adafactor",
                f"state.row/col[{k!r}] are {state.row[k].shape}/{state.col[k].shape}, "
                f"expected the factors of the update's shape {g.shape}",
            )
    check_slots("scale_by_adafactor", "full", state.full, vectors)


def _rms(a: Array) -> float:
    return math.sqrt(float(np.vdot(a, a)) / max(a.size, 1))


def _adafactor_update(
    updates: Params,
    state: ScaleByAdafactorState,
    params: Params,
    /,
    *,
    learning_rate: float,
    beta2_decay: float,
    eps1: float | None,
    eps2: float,
    d: float,
) -> tuple[Params, ScaleByAdafactorState]:
    check_state("scale_by_adafactor", state, ScaleByAdafactorState)
    _check_factored_slots(state, updates)
    t = state.step + 1
    w = float(t) ** beta2_decay
    rho = min(1.0, 1.0 / (learning_rate * math.sqrt(t)))  # min(lr, 1 / sqrt(t)) / lr
    row: dict[str, Array] = {}
    col: dict[str, Array] = {}
    full: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g16 in updates.items():
        tiny = float(np.finfo(g16.dtype).eps) if eps1 is None else eps1  # the params' dtype, as torch
        g = widened(g16)
        g2 = g * g
        if g.ndim > 1:
            r = row[k] = state.row[k] + w * (g2.mean(axis=-1, keepdims=True) - state.row[k])
            c = col[k] = state.col[k] + w * (g2.mean(axis=-2, keepdims=True) - state.col[k])
            v = (r @ c) / np.maximum(r.mean(axis=-2, keepdims=True), tiny)
        else:
            v = full[k] = state.full[k] + w * (g2 - state.full[k])
        u = g / np.sqrt(np.maximum(v, tiny * tiny))
        alpha = max(eps2, _rms(params[k])) * rho
        out[k] = u * (alpha / max(1.0, _rms(u) / d))
    return out, ScaleByAdafactorState(t, row, col, full)


def scale_by_adafactor(
    learning_rate: float = 1e-2,
    *,
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    eps2: float = 1e-3,
    d: float = 1.0,
) -> GradientTransformation[ScaleByAdafactorState]:
    """Adafactor's step in units of ``lr``, as ``torch.optim.Adafactor`` computes it.

    Update rule (see the module docstring for ``R``, ``C`` and ``V``)::

        U_t = g_t / sqrt(max(V_t, eps1^2))
        out_t = max(eps2, rms(p_{t-1})) min(1, 1 / (lr sqrt(t))) U_t / max(1, rms(U_t) / d)

    ``learning_rate`` must be positive; follow this with ``scale_by_learning_rate`` of the same
    rate (as :func:`~functional_dl.optim.aliases.adafactor` does).

    Not elementwise: the factored moments and both RMS terms couple a parameter's entries.

    Raises:
        DomainError: for a ``learning_rate`` that is not positive, ``d < 1``, ``beta2_decay > 0``,
            a negative ``eps1`` or ``eps2``, or any of them not a finite real number.
    """
    where = "scale_by_adafactor"
    learning_rate = bounded(learning_rate, "learning_rate", where, 0.0, open_low=True)
    d = bounded(d, "the clipping threshold d", where, 1.0)
    beta2_decay = bounded(beta2_decay, "beta2_decay", where, high=0.0)
    eps1 = None if eps1 is None else bounded(eps1, "eps1", where, 0.0)
    eps2 = bounded(eps2, "eps2", where, 0.0)
    return GradientTransformation(
        _adafactor_init,
        partial(
            _adafactor_update,
            learning_rate=float(learning_rate),
            beta2_decay=float(beta2_decay),
            eps1=None if eps1 is None else float(eps1),
            eps2=float(eps2),
            d=float(d),
        ),
        elementwise=False,
    )
