"""Activation layers. Each is a pair ``value(x)``/``grad(x, y, dy)`` lifted by :func:`elementwise`.

Formulas (``s`` is the sigmoid)::

    identity  y = x                      dx = dy
    relu      y = max(x, 0)              dx = dy * [x > 0]
    sigmoid   y = s(x) = 1/(1+e^-x)      dx = dy * y * (1 - y)
    tanh      y = tanh(x)                dx = dy * (1 - y^2)

At the kink of relu (``x == 0``) the gradient is taken as 0, as in PyTorch.

Stability: ``sigmoid`` evaluates ``e^-|x|`` only, so it never overflows; it is finite and exact to
rounding for inputs of any magnitude (``s(-1e4) == 0.0``, ``s(1e4) == 1.0``, no warnings).
"""

from __future__ import annotations

import numpy as np

from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.types import Array, Layer

__all__ = ["identity", "relu", "sigmoid", "sigmoid_fn", "tanh"]


def _identity_value(x: Array, /) -> Array:
    return x


def _identity_grad(x: Array, y: Array, dy: Array, /) -> Array:
    return dy


def identity() -> Layer[ElementwiseCache]:
    """``y = x``; returns its input unchanged (not a copy)."""
    return elementwise("identity", _identity_value, _identity_grad)


def _relu_value(x: Array, /) -> Array:
    return np.maximum(x, 0)


def _relu_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * (x > 0)
    return out


def relu() -> Layer[ElementwiseCache]:
    """Rectified linear unit ``y = max(x, 0)``.

    Example:
        >>> import numpy as np
        >>> y, _ = relu().forward({}, np.array([-1.0, 2.0]))
        >>> y
        array([0., 2.])
    """
    return elementwise("relu", _relu_value, _relu_grad)


def sigmoid_fn(x: Array) -> Array:
    """The logistic function ``1 / (1 + e^-x)``, computed without overflow for any ``x``.

    Uses ``e = exp(-|x|) <= 1``: ``s(x) = 1/(1+e)`` for ``x >= 0`` and ``e/(1+e)`` for ``x < 0``.
    """
    e = np.exp(-np.abs(x))
    inv = 1 / (1 + e)
    out: Array = np.where(x >= 0, inv, e * inv)
    return out


def _sigmoid_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * y * (1 - y)
    return out


def sigmoid() -> Layer[ElementwiseCache]:
    """Logistic sigmoid ``y = 1 / (1 + e^-x)``, stable for inputs of any magnitude."""
    return elementwise("sigmoid", sigmoid_fn, _sigmoid_grad)


def _tanh_value(x: Array, /) -> Array:
    return np.tanh(x)


def _tanh_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * (1 - y * y)
    return out


def tanh() -> Layer[ElementwiseCache]:
    """Hyperbolic tangent ``y = tanh(x)``."""
    return elementwise("tanh", _tanh_value, _tanh_grad)
