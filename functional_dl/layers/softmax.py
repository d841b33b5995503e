"""Softmax and log-softmax along an axis, max-shifted so they are exact at any input scale.

With ``m = max_j x_j`` along ``axis`` and ``z = x - m`` (so every ``e^z <= 1``)::

    softmax      y = e^z / sum_j e^z_j          dx = y (dy - sum_j dy_j y_j)
    log_softmax  y = z - log sum_j e^z_j        dx = dy - e^y sum_j dy_j

The shift changes nothing mathematically but keeps ``e^z`` from overflowing: at inputs of
``+-1e4`` both are finite, warning-free, and softmax rows still sum to 1. ``log_softmax`` never
takes the log of a probability that has underflowed to 0, which is why losses use it rather than
``log(softmax(x))``. The array functions live in :mod:`functional_dl._math`, shared with the losses.

Both share the activations' :class:`~functional_dl.layers.elementwise.ElementwiseCache`, whose
kind records the axis resolved against the input's rank (``"softmax(axis=1)"``): backward's
formula sums along that axis, so a cache of a softmax along another axis is refused, while
``softmax(-1)`` and ``softmax(1)`` on a 2-D input, the same function, take each other's.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from functional_dl import _math
from functional_dl._checks import check_float, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers._builder import build, keeps_shape
from functional_dl.layers.elementwise import (
    ElementwiseCache,
    ElementwiseGrad,
    ElementwiseValue,
    check_backward,
    kind_of,
)
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

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


def _forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    value: ElementwiseValue,
    name: str,
    axis: int,
    **slips: object,
) -> tuple[Array, ElementwiseCache]:
    if slips:
        refuse_forward_keywords(name, slips)
    check_no_params(params, name)
    check_float(x, name)
    y = value(x)  # checks the axis against x's rank
    return y, ElementwiseCache(x, y, kind_of(name, axis=axis % x.ndim))


def _backward(
    params: Params, cache: ElementwiseCache, dy: Array, /, *, grad: ElementwiseGrad, name: str, axis: int
) -> tuple[Array, Params]:
    if not isinstance(cache, ElementwiseCache):
        wrong_cache(cache, f"ElementwiseCache of {name}", name)
    ndim = cache.x.ndim
    check_backward(params, cache, dy, name, kind_of(name, axis=axis % ndim if -ndim <= axis < ndim else axis))
    return grad(cache.x, cache.y, dy), EMPTY


def _along(name: str, value: ElementwiseValue, grad: ElementwiseGrad, axis: int) -> Layer[ElementwiseCache]:
    """An activation along ``axis``: :func:`~functional_dl.layers.elementwise.elementwise` with the axis."""
    return build(
        name,
        keeps_shape,
        partial(_forward, value=value, name=name, axis=axis),
        partial(_backward, grad=grad, name=name, axis=axis),
    )


def softmax(axis: int = -1) -> Layer[ElementwiseCache]:
    """Softmax along ``axis`` (the last by default, as ``torch.nn.Softmax(dim=-1)``).

    Example:
        >>> import numpy as np
        >>> y, _ = softmax().forward({}, np.array([[1e4, 0.0, -1e4]]))
        >>> y.tolist()
        [[1.0, 0.0, 0.0]]
    """
    axis = _axis_arg(axis, "softmax")
    return _along("softmax", partial(_softmax_value, axis=axis), partial(_softmax_grad, axis=axis), axis)


def log_softmax(axis: int = -1) -> Layer[ElementwiseCache]:
    """Log-softmax along ``axis`` (``torch.nn.LogSoftmax(dim=-1)``)."""
    axis = _axis_arg(axis, "log_softmax")
    return _along(
        "log_softmax", partial(_log_softmax_value, axis=axis), partial(_log_softmax_grad, axis=axis), axis
    )
