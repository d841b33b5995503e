"""Softmax and log-softmax along an axis, max-shifted so they are exact at any input scale.

With ``m = max_j x_j`` along ``axis`` and ``z = x - m`` (so every ``e^z <= 1``)::

    softmax      y = e^z / sum_j e^z_j          dx = y (dy - sum_j dy_j y_j)
    log_softmax  y = z - log sum_j e^z_j        dx = dy - e^y sum_j dy_j

The shift changes nothing mathematically but keeps ``e^z`` from overflowing: at inputs of
``+-1e4`` both are finite, warning-free, and softmax rows still sum to 1. ``log_softmax`` never
takes the log of a probability that has underflowed to 0, which is why losses use it rather than
``log(softmax(x))``. The array functions live in :mod:`functional_dl._math`, shared with the losses.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from functional_dl import _math
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers.elementwise import ElementwiseCache, elementwise
from functional_dl.types import Array, Layer

__all__ = ["log_softmax", "softmax"]


def _check_axis(x: Array, axis: int, name: str) -> None:
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(name, f"axis {axis} is out of range for input of shape {describe_shape(x.shape)}")


def _axis_arg(axis: object, name: str) -> int:
    """The factory's ``axis``: an int (checked against the input's rank at each call)."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise DomainError(name, f"axis must be an int, got {axis!r}")
    return axis


def _softmax_value(x: Array, /, *, axis: int) -> Array:
    _check_axis(x, axis, "softmax")
    return _math.softmax(x, axis)


def _softmax_grad(x: Array, y: Array, dy: Array, /, *, axis: int) -> Array:
    out: Array = y * (dy - (dy * y).sum(axis=axis, keepdims=True))
    return out


def _log_softmax_value(x: Array, /, *, axis: int) -> Array:
    _check_axis(x, axis, "log_softmax")
    return _math.log_softmax(x, axis)


def _log_softmax_grad(x: Array, y: Array, dy: Array, /, *, axis: int) -> Array:
    out: Array = dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)
    return out


def softmax(axis: int = -1) -> Layer[ElementwiseCache]:
    """Softmax along ``axis`` (the last by default, as ``torch.nn.Softmax(dim=-1)``).

    Example:
        >>> import numpy as np
        >>> y, _ = softmax().forward({}, np.array([[1e4, 0.0, -1e4]]))
        >>> y.tolist()
        [[1.0, 0.0, 0.0]]
    """
    axis = _axis_arg(axis, "softmax")
    return elementwise("softmax", partial(_softmax_value, axis=axis), partial(_softmax_grad, axis=axis))


def log_softmax(axis: int = -1) -> Layer[ElementwiseCache]:
    """Log-softmax along ``axis`` (``torch.nn.LogSoftmax(dim=-1)``)."""
    axis = _axis_arg(axis, "log_softmax")
    return elementwise(
        "log_softmax", partial(_log_softmax_value, axis=axis), partial(_log_softmax_grad, axis=axis)
    )
