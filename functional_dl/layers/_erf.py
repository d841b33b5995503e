"""The error function and the standard normal CDF, vectorised, to double precision.

NumPy has no ``erf``, and the standard library's ``math.erf`` is scalar, so ``gelu`` needs its own.
We evaluate W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for
the error function", Math. Comp. 23, 1969), which reach full double precision:

* ``|x| <= 0.46875``:  ``erf(x) = x P_a(x^2) / Q_b(x^2)``;
* ``0.46875 < y <= 4``: ``erfc(y) = exp(-y^2) P_c(y) / Q_d(y)``;
* ``y > 4``:            ``erfc(y) = exp(-y^2) / y * (1/sqrt(pi) - z P_p(z) / Q_q(z))``, ``z = 1/y^2``.

``exp(-y^2)`` is evaluated as ``exp(-r^2) exp(-(y - r)(y + r))`` with ``r`` rounded down to a
multiple of 1/16, so the large exponent is exact and the rounding of ``y^2`` does not leak into
the result. The normal CDF uses ``erfc`` on the tail side, so it keeps *relative* accuracy deep in
the lower tail where ``1 + erf(x)`` would cancel.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from functional_dl.types import Array

__all__ = ["erf", "erfc", "normal_cdf", "normal_pdf"]

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03)
_A4 = 1.85777706184603153e-1
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
)
_C8 = 2.15311535474403846e-8
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
)
_P5 = 1.63153871373020978e-2
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_SMALL = 0.46875
_RSQRTPI = 1 / math.sqrt(math.pi)
_RSQRT2 = 1 / math.sqrt(2.0)
_RSQRT2PI = 1 / math.sqrt(2.0 * math.pi)


def _ratio(v: Array, lead: float, num: tuple[float, ...], den: tuple[float, ...]) -> Array:
    """``(...((lead v + num[0]) v + num[1]) ... + num[-1]) / (...((v + den[0]) v ...) + den[-1])``."""
    xnum = lead * v
    xden = v.copy()
    for a, b in zip(num[:-1], den[:-1], strict=True):
        xnum = (xnum + a) * v
        xden = (xden + b) * v
    out: Array = (xnum + num[-1]) / (xden + den[-1])
    return out


def _exp_minus_square(y: Array) -> Array:
    """``exp(-y^2)`` without the rounding error of ``y * y`` (Cody's splitting)."""
    r = np.trunc(y * 16.0) / 16.0
    out: Array = np.exp(-r * r) * np.exp(-(y - r) * (y + r))
    return out


def _erfc_large(y: Array) -> Array:
    """``erfc(y)`` for ``y > 0.46875`` (float64)."""
    out = np.empty_like(y)
    mid = y <= 4.0
    ym = y[mid]
    out[mid] = _exp_minus_square(ym) * _ratio(ym, _C8, _C, _D)
    yt = y[~mid]
    z = 1.0 / (yt * yt)
    out[~mid] = _exp_minus_square(yt) / yt * (_RSQRTPI - z * _ratio(z, _P5, _P, _Q))
    return out


def _parts(x: Array) -> tuple[Array, npt.NDArray[np.bool_], Array, Array]:
    """``(x, small, erf(x[small]), erfc(|x[~small]|))`` in float64, with ``small = |x| <= 0.46875``."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) <= _SMALL
    xs = x[small]
    return x, small, xs * _ratio(xs * xs, _A4, _A, _B), _erfc_large(np.abs(x[~small]))


def erfc(x: Array) -> Array:
    """The complementary error function ``1 - erf(x)``, elementwise, in float64.

    Example:
        >>> import math
        >>> abs(float(erfc(np.array(3.0))) - math.erfc(3.0)) < 1e-20
        True
    """
    x, small, erf_small, tail = _parts(x)
    out = np.empty_like(x)
    out[small] = 1.0 - erf_small
    out[~small] = np.where(x[~small] < 0, 2.0 - tail, tail)
    return out


def erf(x: Array) -> Array:
    """The error function ``2/sqrt(pi) * integral_0^x exp(-t^2) dt``, elementwise, in float64.

    Example:
        >>> import math
        >>> abs(float(erf(np.array(0.3))) - math.erf(0.3)) < 1e-16
        True
    """
    x, small, erf_small, tail = _parts(x)
    out = np.empty_like(x)
    out[small] = erf_small
    out[~small] = np.where(x[~small] < 0, tail - 1.0, 1.0 - tail)
    return out


def normal_cdf(x: Array) -> Array:
    """``Phi(x) = P(Z <= x) = erfc(-x / sqrt(2)) / 2`` for standard normal ``Z``, in float64."""
    out: Array = 0.5 * erfc(np.asarray(x, dtype=np.float64) * -_RSQRT2)
    return out


def normal_pdf(x: Array) -> Array:
    """``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``, in float64."""
    x = np.asarray(x, dtype=np.float64)
    out: Array = _RSQRT2PI * np.exp(-0.5 * x * x)
    return out
