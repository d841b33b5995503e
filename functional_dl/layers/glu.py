"""Gated linear unit (``torch.nn.GLU``): half of the input gates the other half.

Split ``x`` along ``dim`` into halves ``a`` (first) and ``b`` (second), with ``s`` the sigmoid::

    y  = a s(b)
    da = dy s(b)        db = dy a s(b) (1 - s(b))

so ``dx`` is ``da`` and ``db`` put back side by side along ``dim``. ``dim`` counts the batch axis
(as PyTorch's does) and must not be it; the size along ``dim`` must be even.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from functional_dl import _math
from functional_dl._checks import check_cache, check_dy, check_float, check_no_params, refuse_forward_keywords
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["GLUCache", "glu"]

_NAME = "glu"


class GLUCache(NamedTuple):
    """What the backward pass needs (halves of the input's shape with ``dim`` halved)."""

    a: Array  # the first half of x along dim
    gate: Array  # s(b), b the second half
    axis: int  # dim as a non-negative axis


def _axis(ndim: int, dim: int, shape: tuple[int | None, ...]) -> int:
    axis = dim + ndim if dim < 0 else dim
    if not 0 < axis < ndim:
        raise ShapeError(
            _NAME, f"dim {dim} must name a non-batch axis of an input of shape {describe_shape(shape)}"
        )
    size = shape[axis]
    if size is not None and size % 2:
        raise ShapeError(
            _NAME, f"expected an even size along dim {dim}, got {size} (input shape {describe_shape(shape)})"
        )
    return axis


def _shapes(in_shape: Shape, /, *, dim: int) -> tuple[Shape, ArraySpecs]:
    axis = _axis(len(in_shape), dim, in_shape)
    size = in_shape[axis]
    out = (*in_shape[:axis], None if size is None else size // 2, *in_shape[axis + 1 :])
    return out, EMPTY_SPECS


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, dim: int, **slips: object
) -> tuple[Array, GLUCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_NAME, slips)
    check_no_params(params, _NAME)
    check_float(x, _NAME)
    axis = _axis(x.ndim, dim, x.shape)
    a, b = np.split(x, 2, axis=axis)
    gate = _math.sigmoid(b)
    y: Array = a * gate
    return y, GLUCache(a, gate, axis)


def _backward(params: Params, cache: GLUCache, dy: Array, /, *, dim: int) -> tuple[Array, Params]:
    check_cache(cache, GLUCache, _NAME)
    check_no_params(params, _NAME)
    check_dy(dy, cache.a.shape, cache.a.dtype, _NAME)
    da = dy * cache.gate
    db = da * cache.a * (1 - cache.gate)
    dx: Array = np.concatenate([da, db], axis=cache.axis)
    return dx, EMPTY


def glu(dim: int = -1) -> Layer[GLUCache]:
    """``y = a * sigmoid(b)`` with ``a, b`` the halves of the input along ``dim``.

    Args:
        dim: the axis to split (counting the batch axis; negative counts from the end).

    Example:
        >>> import numpy as np
        >>> y, _ = glu().forward({}, np.array([[2.0, 4.0, 0.0, 0.0]]))
        >>> y.tolist()
        [[1.0, 2.0]]
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim == 0:
        raise DomainError(_NAME, f"dim must be a non-batch axis (a non-zero int), got {dim!r}")
    return build(_NAME, _shapes, _forward, _backward, dim=dim)
