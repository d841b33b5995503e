"""Pointwise activation layers. Each is a pair ``value(x)``/``grad(x, y, dy)`` lifted by :func:`elementwise`.

Formulas (``s`` is the sigmoid, ``[.]`` an indicator)::

    identity      y = x                                  dx = dy
    relu          y = max(x, 0)                          dx = dy [x > 0]
    leaky_relu    y = x if x > 0 else a x                dx = dy (1 if x > 0 else a)
    elu           y = x if x > 0 else a (e^x - 1)        dx = dy (1 if x > 0 else a e^x)
    selu          y = l * elu_a(x), l, a fixed           dx = l * elu_a'(x) dy
    sigmoid       y = s(x) = 1/(1+e^-x)                  dx = dy y (1 - y)
    tanh          y = tanh(x)                            dx = dy (1 - y^2)
    softplus      y = log(1 + e^(b x)) / b               dx = dy s(b x)
    silu          y = x s(x)                             dx = dy s(x) (1 + x (1 - s(x)))
    hard_sigmoid  y = clip(x / 6 + 1/2, 0, 1)            dx = dy / 6 [-3 < x < 3]
    hard_tanh     y = clip(x, lo, hi)                    dx = dy [lo < x < hi]

At a kink the gradient is PyTorch's: 0 for relu at 0, the slope ``a`` for leaky_relu at 0, and 0
at the ends of hard_sigmoid and hard_tanh.

Stability: nothing here exponentiates a large positive number. ``sigmoid`` uses ``e^-|x|``,
``softplus`` uses ``max(bx, 0) + log1p(e^-|bx|)``, and ``elu``/``selu`` use ``expm1(min(x, 0))``; all
are finite and warning-free at ``+-1e4`` (``s(-1e4) == 0.0``, ``s(1e4) == 1.0``). Unlike PyTorch,
``softplus`` has no ``threshold`` above which it returns ``x``: the exact form is already stable
(the two differ by ``log1p(e^-20) < 2.1e-9`` at PyTorch's default threshold of 20).

Constants are Python floats, so float32 in gives float32 out.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from functional_dl import _math
from functional_dl import _recycle as recycle
from functional_dl.errors import DomainError
from functional_dl.layers._args import real
from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.types import Array, Layer

__all__ = [
    "elu",
    "hard_sigmoid",
    "hard_tanh",
    "identity",
    "leaky_relu",
    "relu",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "swish",
    "tanh",
]

# SELU's fixed point constants (Klambauer et al., 2017), as torch.nn.SELU uses them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _identity_value(x: Array, /) -> Array:
    return x


def _identity_grad(x: Array, y: Array, dy: Array, /) -> Array:
    return dy


def identity() -> Layer[ElementwiseCache]:
    """``y = x``; returns its input unchanged (not a copy)."""
    return elementwise("identity", _identity_value, _identity_grad)


def _relu_value(x: Array, /) -> Array:
    if x.nbytes < recycle.RECYCLE_FROM:  # small: malloc reuses it anyway, and a call less per step
        out: Array = np.maximum(x, 0)
        return out
    # Into recycled memory: a large activation would otherwise be fresh pages on every step.
    return np.maximum(x, 0, out=recycle.empty(x.shape, x.dtype))


def _relu_grad(x: Array, y: Array, dy: Array, /) -> Array:
    if dy.nbytes < recycle.RECYCLE_FROM:
        out: Array = dy * (x > 0)
        return out
    # dy * (x > 0), the mask in recycled memory too: a fresh one is fresh pages on every step.
    mask = np.greater(x, 0, out=recycle.empty(x.shape, np.bool_))
    return np.multiply(dy, mask, out=recycle.empty(dy.shape, dy.dtype))


def relu() -> Layer[ElementwiseCache]:
    """Rectified linear unit ``y = max(x, 0)``.

    Example:
        >>> import numpy as np
        >>> y, _ = relu().forward({}, np.array([-1.0, 2.0]))
        >>> y
        array([0., 2.])
    """
    return elementwise("relu", _relu_value, _relu_grad)


def _leaky_value(x: Array, /, *, slope: float) -> Array:
    out: Array = np.where(x > 0, x, x * slope)
    return out


def _leaky_grad(x: Array, y: Array, dy: Array, /, *, slope: float) -> Array:
    out: Array = np.where(x > 0, dy, dy * slope)
    return out


def leaky_relu(negative_slope: float = 0.01) -> Layer[ElementwiseCache]:
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise (``torch.nn.LeakyReLU``)."""
    slope = real(negative_slope, "negative_slope", "leaky_relu")
    return elementwise(
        "leaky_relu",
        partial(_leaky_value, slope=slope),
        partial(_leaky_grad, slope=slope),
        negative_slope=slope,
    )


def _elu_value(x: Array, /, *, alpha: float, scale: float) -> Array:
    neg = np.expm1(np.minimum(x, 0)) * (alpha * scale)
    out: Array = np.where(x > 0, x * scale, neg)
    return out


def _elu_grad(x: Array, y: Array, dy: Array, /, *, alpha: float, scale: float) -> Array:
    # alpha * e^x directly, not y + alpha: that sum cancels for very negative x.
    slope = np.where(x > 0, scale, np.exp(np.minimum(x, 0)) * (alpha * scale))
    out: Array = dy * slope
    return out


def elu(alpha: float = 1.0) -> Layer[ElementwiseCache]:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise (``torch.nn.ELU``)."""
    kw = {"alpha": real(alpha, "alpha", "elu"), "scale": 1.0}
    return elementwise("elu", partial(_elu_value, **kw), partial(_elu_grad, **kw), alpha=kw["alpha"])


def selu() -> Layer[ElementwiseCache]:
    """Scaled ELU ``1.0507 * elu_1.6733(x)`` (``torch.nn.SELU``); pair it with LeCun normal init."""
    kw = {"alpha": _SELU_ALPHA, "scale": _SELU_SCALE}
    return elementwise("selu", partial(_elu_value, **kw), partial(_elu_grad, **kw))


def _sigmoid_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * y * (1 - y)
    return out


def sigmoid() -> Layer[ElementwiseCache]:
    """Logistic sigmoid ``y = 1 / (1 + e^-x)``, stable for inputs of any magnitude."""
    return elementwise("sigmoid", _math.sigmoid, _sigmoid_grad)


def _tanh_value(x: Array, /) -> Array:
    return np.tanh(x)


def _tanh_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * (1 - y * y)
    return out


def tanh() -> Layer[ElementwiseCache]:
    """Hyperbolic tangent ``y = tanh(x)``."""
    return elementwise("tanh", _tanh_value, _tanh_grad)


def _softplus_value(x: Array, /, *, beta: float) -> Array:
    bx = x * beta
    out: Array = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return out


def _softplus_grad(x: Array, y: Array, dy: Array, /, *, beta: float) -> Array:
    out: Array = dy * _math.sigmoid(x * beta)
    return out


def softplus(beta: float = 1.0) -> Layer[ElementwiseCache]:
    """``y = log(1 + e^(beta x)) / beta``, a smooth relu, stable for inputs of any magnitude."""
    b = real(beta, "beta", "softplus")
    if not b > 0:
        raise DomainError("softplus", f"beta must be positive, got {beta!r}")
    return elementwise("softplus", partial(_softplus_value, beta=b), partial(_softplus_grad, beta=b), beta=b)


def _silu_value(x: Array, /) -> Array:
    out: Array = x * _math.sigmoid(x)
    return out


def _silu_grad(x: Array, y: Array, dy: Array, /) -> Array:
    s = _math.sigmoid(x)
    out: Array = dy * s * (1 + x * (1 - s))
    return out


def silu() -> Layer[ElementwiseCache]:
    """Sigmoid-weighted linear unit (swish) ``y = x s(x)`` (``torch.nn.SiLU``)."""
    return elementwise("silu", _silu_value, _silu_grad)


def swish() -> Layer[ElementwiseCache]:
    """Another name for :func:`silu`."""
    return silu()


def _clip_value(x: Array, /, *, lo: float, hi: float, scale: float, shift: float) -> Array:
    out: Array = np.clip(x * scale + shift, lo, hi)
    return out


def _clip_grad(x: Array, y: Array, dy: Array, /, *, left: float, right: float, scale: float) -> Array:
    # (left, right) is the open input interval where the clip is linear; its ends are the kinks.
    out: Array = np.where((x > left) & (x < right), dy * scale, 0.0)
    return out


def hard_sigmoid() -> Layer[ElementwiseCache]:
    """``y = relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)``, PyTorch's ``nn.Hardsigmoid``."""
    return elementwise(
        "hard_sigmoid",
        partial(_clip_value, lo=0.0, hi=1.0, scale=1 / 6, shift=0.5),
        partial(_clip_grad, left=-3.0, right=3.0, scale=1 / 6),
    )


def hard_tanh(min_val: float = -1.0, max_val: float = 1.0) -> Layer[ElementwiseCache]:
    """``y = clip(x, min_val, max_val)`` (``torch.nn.Hardtanh``)."""
    lo, hi = real(min_val, "min_val", "hard_tanh"), real(max_val, "max_val", "hard_tanh")
    if not lo < hi:
        raise DomainError("hard_tanh", f"need min_val < max_val, got {min_val!r}, {max_val!r}")
    return elementwise(
        "hard_tanh",
        partial(_clip_value, lo=lo, hi=hi, scale=1.0, shift=0.0),
        partial(_clip_grad, left=lo, right=hi, scale=1.0),
        min_val=lo,
        max_val=hi,
    )
