"""GELU, the Gaussian error linear unit, exact and in its tanh approximation (``torch.nn.GELU``).

Exact (``approximate="none"``), with ``Phi``/``phi`` the standard normal CDF/density::

    y = x Phi(x) = x erfc(-x / sqrt(2)) / 2          dx = dy (Phi(x) + x phi(x))

Tanh approximation (``approximate="tanh"``), with ``u = sqrt(2/pi) (x + 0.044715 x^3)``::

    y = x (1 + tanh(u)) / 2
    dx = dy ((1 + tanh(u)) / 2 + x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2)

The exact form evaluates ``Phi`` through ``erfc`` (:mod:`functional_dl.layers._erf`, double
precision), so it stays accurate in relative terms far into the negative tail, and it computes in
float64 before casting back to the input's dtype. Both forms are finite at ``+-1e4``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from functional_dl.errors import DomainError
from functional_dl.layers._erf import normal_cdf, normal_pdf
from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.types import Array, Layer

__all__ = ["gelu"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715


def _exact_value(x: Array, /) -> Array:
    out: Array = (x * normal_cdf(x)).astype(x.dtype, copy=False)
    return out


def _exact_grad(x: Array, y: Array, dy: Array, /) -> Array:
    slope = normal_cdf(x) + x * normal_pdf(x)
    out: Array = (dy * slope).astype(dy.dtype, copy=False)
    return out


def _tanh_value(x: Array, /) -> Array:
    t = np.tanh((x + x * x * x * _KAPPA) * _SQRT_2_OVER_PI)
    out: Array = x * 0.5 * (1 + t)
    return out


def _tanh_grad(x: Array, y: Array, dy: Array, /) -> Array:
    x2 = x * x
    t = np.tanh((x + x2 * x * _KAPPA) * _SQRT_2_OVER_PI)
    slope = 0.5 * (1 + t) + x * 0.5 * (1 - t * t) * (_SQRT_2_OVER_PI * (1 + x2 * (3 * _KAPPA)))
    out: Array = dy * slope
    return out


def gelu(approximate: Literal["none", "tanh"] = "none") -> Layer[ElementwiseCache]:
    """GELU ``y = x Phi(x)``; ``approximate="tanh"`` selects the tanh approximation, as in PyTorch.

    Example:
        >>> import numpy as np
        >>> y, _ = gelu().forward({}, np.array([-1.0, 0.0, 1.0]))
        >>> y.round(6).tolist()
        [-0.158655, 0.0, 0.841345]
    """
    if approximate == "none":
        return elementwise("gelu", _exact_value, _exact_grad)
    if approximate == "tanh":
        return elementwise("gelu_tanh", _tanh_value, _tanh_grad)
    raise DomainError("gelu", f"approximate must be 'none' or 'tanh', got {approximate!r}")
