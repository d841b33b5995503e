"""Pointwise activations from mobile and recent vision networks: ``relu6``, ``hard_swish``, ``mish``.

Formulas (``s`` is the sigmoid, ``sp(x) = log(1 + e^x)`` the softplus, ``[.]`` an indicator)::

    relu6       y = clip(x, 0, 6)                 dx = dy [0 < x < 6]
    hard_swish  y = x relu6(x + 3) / 6            dx = dy (0 if x < -3, 1 if x > 3, else (2x + 3) / 6)
    mish        y = x tanh(sp(x))                 dx = dy (t + x s(x) (1 - t^2)),  t = tanh(sp(x))

At a kink the gradient is PyTorch's: 0 for relu6 at 0 and 6; for hard_swish, 0 at -3 and
``(2x + 3) / 6 = 1.5`` at 3 (``torch.nn.Hardswish``'s backward uses ``x < -3`` and ``x <= 3``).
``mish`` takes the softplus in its stable form ``max(x, 0) + log1p(e^-|x|)``, so it is finite and
warning-free at ``+-1e4``. Constants are Python floats, so float32 in gives float32 out.
"""

from __future__ import annotations

import numpy as np

from functional_dl import _math
from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.types import Array, Layer

__all__ = ["hard_swish", "mish", "relu6"]


def _relu6_value(x: Array, /) -> Array:
    out: Array = np.clip(x, 0.0, 6.0)
    return out


def _relu6_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = np.where((x > 0) & (x < 6), dy, 0.0).astype(dy.dtype, copy=False)
    return out


def relu6() -> Layer[ElementwiseCache]:
    """``y = min(max(x, 0), 6)`` (``torch.nn.ReLU6``).

    Example:
        >>> import numpy as np
        >>> relu6().forward({}, np.array([-1.0, 3.0, 7.0]))[0].tolist()
        [0.0, 3.0, 6.0]
    """
    return elementwise("relu6", _relu6_value, _relu6_grad)


def _hard_swish_value(x: Array, /) -> Array:
    out: Array = x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    return out


def _hard_swish_grad(x: Array, y: Array, dy: Array, /) -> Array:
    slope = np.where(x < -3.0, 0.0, np.where(x <= 3.0, x / 3.0 + 0.5, 1.0))
    out: Array = (dy * slope).astype(dy.dtype, copy=False)
    return out


def hard_swish() -> Layer[ElementwiseCache]:
    """``y = x relu6(x + 3) / 6`` (``torch.nn.Hardswish``, MobileNetV3).

    Example:
        >>> import numpy as np
        >>> hard_swish().forward({}, np.array([-4.0, 0.0, 1.0, 4.0]))[0].tolist()
        [-0.0, 0.0, 0.6666666666666666, 4.0]
    """
    return elementwise("hard_swish", _hard_swish_value, _hard_swish_grad)


def _softplus(x: Array) -> Array:
    out: Array = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return out


def _mish_value(x: Array, /) -> Array:
    out: Array = x * np.tanh(_softplus(x))
    return out


def _mish_grad(x: Array, y: Array, dy: Array, /) -> Array:
    t = np.tanh(_softplus(x))
    out: Array = dy * (t + x * _math.sigmoid(x) * (1 - t * t))
    return out


def mish() -> Layer[ElementwiseCache]:
    """``y = x tanh(softplus(x))`` (``torch.nn.Mish``), stable for inputs of any magnitude.

    Example:
        >>> import numpy as np
        >>> [round(v, 6) for v in mish().forward({}, np.array([-1.0, 0.0, 1.0]))[0].tolist()]
        [-0.303401, 0.0, 0.865098]
    """
    return elementwise("mish", _mish_value, _mish_grad)
