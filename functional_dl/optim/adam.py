"""The Adam family: scalings by bias-corrected first and second moment estimates.

With ``g`` the incoming update, ``t`` the 1-based step, ``m_0 = v_0 = 0``::

    m_t = b1 m_{t-1} + (1 - b1) g_t           v_t = b2 v_{t-1} + (1 - b2) g_t^2

Adam then steps along the bias-corrected ratio (:func:`adam_direction`, the textbook formula)::

    mu_hat = m_t / (1 - b1^t)       nu_hat = v_t / (1 - b2^t)
    u_t    = -lr * mu_hat / (sqrt(nu_hat) + eps)

The formulas follow ``torch.optim`` (Adam, NAdam, RAdam) term by term, so trajectories agree with
PyTorch's to rounding. Adam is the optimizer most steps run through, and its per-step cost is
mostly call overhead on small networks, so the update runs :func:`folded_adam_direction`: the same
formula with the two bias corrections folded into scalars (two NumPy passes fewer), tested
against :func:`adam_direction`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import numpy as np

from functional_dl._argcheck import bounded, flag
from functional_dl.optim.base import GradientTransformation, check_slots, check_state, moment_zeros, widened
from functional_dl.types import Array, Params

__all__ = [
    "FoldedBiasCorrection",
    "ScaleByAdamState",
    "ScaleByNadamState",
    "adam_direction",
    "folded_adam_direction",
    "folded_bias_correction",
    "scale_by_adam",
    "scale_by_nadam",
    "scale_by_radam",
]


class ScaleByAdamState(NamedTuple):
    """Moment estimates of Adam (and RAdam).

    Attributes:
        step: steps taken so far.
        mu: first moments ``m`` (keys and shapes of the params).
        nu: second moments ``v``.
        nu_max: AMSGrad's running maximum of ``v`` (empty unless ``amsgrad``).
    """

    step: int
    mu: Mapping[str, Array]
    nu: Mapping[str, Array]
    nu_max: Mapping[str, Array]


def moment_decays(b1: float, b2: float, eps: float, where: str) -> tuple[float, float, float]:
    """Adam-style ``b1``, ``b2`` (each in ``[0, 1)``, as PyTorch requires) and ``eps >= 0``, checked.

    Raises:
        DomainError: naming ``where`` for a value out of range or not a finite real number.
    """
    return (
        bounded(b1, "b1", where, 0.0, 1.0, open_high=True),
        bounded(b2, "b2", where, 0.0, 1.0, open_high=True),
        bounded(eps, "eps", where, 0.0),
    )


def _moments_init(params: Params, /, *, amsgrad: bool = False) -> ScaleByAdamState:
    zeros = {k: moment_zeros(p) for k, p in params.items()}
    return ScaleByAdamState(0, zeros, dict(zeros), dict(zeros) if amsgrad else {})


def _moments(g: Array, mu: Array, nu: Array, c1: float, c2: float) -> tuple[Array, Array]:
    # m + (1-b1)(g - m) is torch's lerp; both moments in this form cost one allocation each.
    m = g - mu
    m *= c1
    m += mu
    v = g * g
    v -= nu
    v *= c2
    v += nu
    return m, v


def _checked_moments(
    where: str, state: ScaleByAdamState | ScaleByNadamState, kind: type, updates: Params
) -> None:
    check_state(where, state, kind)
    check_slots(where, "mu", state.mu, updates)
    check_slots(where, "nu", state.nu, updates)


def _all_moments(
    updates: Params, mu_old: Mapping[str, Array], nu_old: Mapping[str, Array], b1: float, b2: float
) -> tuple[dict[str, Array], dict[str, Array]]:
    mu: dict[str, Array] = {}
    nu: dict[str, Array] = {}
    for k, g in updates.items():
        mu[k], nu[k] = _moments(widened(g), mu_old[k], nu_old[k], 1.0 - b1, 1.0 - b2)
    return mu, nu


def adam_direction(
    m: Array, v: Array, *, t: int, b1: float, b2: float, eps: float, eps_root: float = 0.0
) -> Array:
    """Adam's step direction as the paper writes it: the reference for the fast path below.

    ``mu_hat = m / (1 - b1^t)``, ``nu_hat = v / (1 - b2^t)``,
    ``u = mu_hat / (sqrt(nu_hat + eps_root) + eps)``; the learning rate then makes the step
    ``-lr * u``. Shapes: ``m`` and ``v`` alike, and so is the result.
    """
    mu_hat = m / (1.0 - b1**t)
    nu_hat = v / (1.0 - b2**t)
    u: Array = mu_hat / (np.sqrt(nu_hat + eps_root) + eps)
    return u


class FoldedBiasCorrection(NamedTuple):
    """The scalars of :func:`folded_adam_direction` at one step (``c2 = 1 - b2^t``).

    Attributes:
        step: ``sqrt(c2) / (1 - b1^t)``.
        eps: ``eps * sqrt(c2)``.
        eps_root: ``eps_root * c2``.
    """

    step: float
    eps: float
    eps_root: float


def folded_bias_correction(t: int, b1: float, b2: float, eps: float, eps_root: float) -> FoldedBiasCorrection:
    """The bias corrections of step ``t`` folded into three scalars (see :func:`folded_adam_direction`)."""
    root_bc2 = math.sqrt(1.0 - b2**t)
    return FoldedBiasCorrection(root_bc2 / (1.0 - b1**t), eps * root_bc2, eps_root * root_bc2 * root_bc2)


def folded_adam_direction(m: Array, v: Array, c: FoldedBiasCorrection) -> Array:
    """:func:`adam_direction` with the bias corrections folded into scalars: two passes fewer.

    Multiplying numerator and denominator by ``sqrt(1 - b2^t)`` gives
    ``u = c.step * m / (sqrt(v + c.eps_root) + c.eps)``, which touches ``v`` once instead of
    dividing both moments by their corrections. It agrees with the plain formula to rounding:
    within a relative ``4 * eps`` of the dtype (``tests/optim/test_adam.py`` checks it). Returns a
    new array.
    """
    if c.eps_root:
        d = v + c.eps_root
        d = np.sqrt(d, out=d)
    else:
        d = np.sqrt(v)
    d += c.eps
    u: Array = np.divide(m, d, out=d)
    u *= c.step
    return u


def _adam_update(
    updates: Params,
    state: ScaleByAdamState,
    params: Params,
    /,
    *,
    b1: float,
    b2: float,
    eps: float,
    eps_root: float,
    amsgrad: bool,
) -> tuple[Params, ScaleByAdamState]:
    _checked_moments("scale_by_adam", state, ScaleByAdamState, updates)
    if amsgrad:
        check_slots("scale_by_adam", "nu_max", state.nu_max, updates)
    t = state.step + 1
    folded = folded_bias_correction(t, b1, b2, eps, eps_root)
    c1, c2 = 1.0 - b1, 1.0 - b2
    mu_old, nu_old, max_old = state.mu, state.nu, state.nu_max
    mu: dict[str, Array] = {}
    nu: dict[str, Array] = {}
    nu_max: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g in updates.items():
        m, v = _moments(widened(g), mu_old[k], nu_old[k], c1, c2)
        mu[k] = m
        nu[k] = v
        if amsgrad:
            v = nu_max[k] = np.maximum(max_old[k], v)
        out[k] = folded_adam_direction(m, v, folded)
    return out, ScaleByAdamState(t, mu, nu, nu_max)


def scale_by_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0, amsgrad: bool = False
) -> GradientTransformation[ScaleByAdamState]:
    """Adam's scaling (Kingma and Ba, 2015), with PyTorch's AMSGrad variant.

    Update rule::

        m_hat = m_t / (1 - b1^t)        v_hat = v_t / (1 - b2^t)
        u_t   = m_hat / (sqrt(v_hat + eps_root) + eps)

    With ``amsgrad``, ``v_t`` in ``v_hat`` is replaced by ``max(v_1, ..., v_t)`` (the running
    maximum of the raw second moment, as ``torch.optim.Adam(amsgrad=True)`` keeps it).

    Args:
        b1: decay of the first moment.
        b2: decay of the second moment.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root (keeps the gradient of the update finite).
        amsgrad: use the running maximum of ``v``.

    Raises:
        DomainError: for ``b1`` or ``b2`` outside ``[0, 1)``, a negative ``eps`` or ``eps_root``,
            a non-bool ``amsgrad``, or a value that is not a finite real number.
    """
    where = "scale_by_adam"
    b1, b2, eps = moment_decays(b1, b2, eps, where)
    eps_root = bounded(eps_root, "eps_root", where, 0.0)
    amsgrad = flag(amsgrad, "amsgrad", where)
    return GradientTransformation(
        partial(_moments_init, amsgrad=amsgrad),
        partial(
            _adam_update,
            b1=float(b1),
            b2=float(b2),
            eps=float(eps),
            eps_root=float(eps_root),
            amsgrad=amsgrad,
        ),
        elementwise=True,
    )


class ScaleByNadamState(NamedTuple):
    """NAdam's moments and the running product of its momentum coefficients ``prod_i mu_i``."""

    step: int
    mu: Mapping[str, Array]
    nu: Mapping[str, Array]
    mu_product: float


def _nadam_init(params: Params, /) -> ScaleByNadamState:
    zeros = {k: moment_zeros(p) for k, p in params.items()}
    return ScaleByNadamState(0, zeros, dict(zeros), 1.0)


def _nadam_update(
    updates: Params,
    state: ScaleByNadamState,
    params: Params,
    /,
    *,
    b1: float,
    b2: float,
    eps: float,
    momentum_decay: float,
) -> tuple[Params, ScaleByNadamState]:
    _checked_moments("scale_by_nadam", state, ScaleByNadamState, updates)
    t = state.step + 1
    inv_root_bc2 = 1.0 / math.sqrt(1.0 - b2**t)
    mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    prod = state.mu_product * mu_t
    coef_g = (1.0 - mu_t) / (1.0 - prod)
    coef_m = mu_next / (1.0 - prod * mu_next)
    mu, nu = _all_moments(updates, state.mu, state.nu, b1, b2)
    out: dict[str, Array] = {}
    for k, g in updates.items():
        m, v = mu[k], nu[k]
        d = np.sqrt(v)
        d *= inv_root_bc2
        d += eps
        u = widened(g) * coef_g
        u += m * coef_m
        u /= d
        out[k] = u
    return out, ScaleByNadamState(t, mu, nu, prod)


def scale_by_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3
) -> GradientTransformation[ScaleByNadamState]:
    """NAdam's scaling (Dozat, 2016) with momentum decay, as ``torch.optim.NAdam`` defines it.

    Update rule::

        mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))           P_t = mu_1 ... mu_t
        u_t  = [(1 - mu_t) / (1 - P_t) g_t + mu_{t+1} / (1 - P_t mu_{t+1}) m_t]
               / (sqrt(v_t / (1 - b2^t)) + eps)

    Raises:
        DomainError: for ``b1`` or ``b2`` outside ``[0, 1)``, a negative ``eps`` or
            ``momentum_decay``, or a value that is not a finite real number.
    """
    where = "scale_by_nadam"
    b1, b2, eps = moment_decays(b1, b2, eps, where)
    momentum_decay = bounded(momentum_decay, "momentum_decay", where, 0.0)
    return GradientTransformation(
        _nadam_init,
        partial(
            _nadam_update, b1=float(b1), b2=float(b2), eps=float(eps), momentum_decay=float(momentum_decay)
        ),
        elementwise=True,
    )


def _radam_update(
    updates: Params, state: ScaleByAdamState, params: Params, /, *, b1: float, b2: float, eps: float
) -> tuple[Params, ScaleByAdamState]:
    _checked_moments("scale_by_radam", state, ScaleByAdamState, updates)
    t = state.step + 1
    bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * t * b2**t / bc2
    rectified = rho_t > 5.0
    if rectified:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        coef = rect * math.sqrt(bc2) / bc1
    mu, nu = _all_moments(updates, state.mu, state.nu, b1, b2)
    out: dict[str, Array] = {}
    for k, m in mu.items():
        v = nu[k]
        if rectified:
            d = np.sqrt(v)
            d += eps
            u = np.divide(m, d, out=d)
            u *= coef
        else:
            u = m * (1.0 / bc1)
        out[k] = u
    return out, ScaleByAdamState(t, mu, nu, {})


def scale_by_radam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation[ScaleByAdamState]:
    """Rectified Adam's scaling (Liu et al., 2020), as ``torch.optim.RAdam`` defines it.

    Update rule, with ``rho_inf = 2 / (1 - b2) - 1`` and
    ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``::

        u_t = m_t / (1 - b1^t)                                      if rho_t <= 5
        u_t = r_t * m_t / (1 - b1^t) * sqrt(1 - b2^t) / (sqrt(v_t) + eps)   otherwise
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

    Raises:
        DomainError: for ``b1`` or ``b2`` outside ``[0, 1)``, a negative ``eps``,
            or a value that is not a finite real number.
    """
    where = "scale_by_radam"
    b1, b2, eps = moment_decays(b1, b2, eps, where)
    return GradientTransformation(
        _moments_init, partial(_radam_update, b1=float(b1), b2=float(b2), eps=float(eps)), elementwise=True
    )
