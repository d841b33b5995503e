"""Parametric relu: a leaky relu whose negative slope is learned (``torch.nn.PReLU``).

With ``a`` of shape ``(num_parameters,)``, either one slope for the whole input or one per channel
(axis 1 of ``x (N, C, *S)``), broadcast as ``a[c]`` over the other axes::

    y  = max(x, 0) + a min(x, 0)
    dx = dy (1 if x > 0 else a)
    da = sum over every axis but the channel of dy min(x, 0)

At ``x = 0`` the gradient is PyTorch's: ``dx = a dy`` and the slope's term is 0. ``a`` starts at
``init`` (0.25, as in PyTorch).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_float,
    check_keys,
    check_param,
    check_same_dtype,
    refuse_forward_keywords,
)
from functional_dl.errors import ShapeError, describe_shape
from functional_dl.initializers import constant
from functional_dl.layers._args import positive_int, real
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.types import EVAL, Array, Context, Layer, Params, Shape

__all__ = ["PReLUCache", "prelu"]

_NAME = "prelu"
_KEYS = frozenset({"a"})


class PReLUCache(NamedTuple):
    """What the backward pass needs."""

    x: Array  # (N, C, *S), or any shape with one slope
    a: Array  # the slopes broadcastable to x: (1, C, 1, ...) or (1,)


def _shapes(in_shape: Shape, /, *, num_parameters: int, init: float) -> tuple[Shape, ArraySpecs]:
    if num_parameters > 1 and (len(in_shape) < 2 or in_shape[1] != num_parameters):
        raise ShapeError(
            _NAME,
            f"expected (N, {num_parameters}, ...) for {num_parameters} slopes, "
            f"got {describe_shape(in_shape)}",
        )
    return in_shape, {"a": ArraySpec((num_parameters,), constant(init))}


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, num_parameters: int, init: float, **slips: object
) -> tuple[Array, PReLUCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_NAME, slips)
    check_float(x, _NAME)
    check_keys(params, _KEYS, _NAME)
    a = check_param(params, "a", (num_parameters,), _NAME)
    check_same_dtype(x, a, _NAME)
    if num_parameters > 1:
        if x.ndim < 2 or x.shape[1] != num_parameters:
            raise ShapeError(
                _NAME, f"expected an input (N, {num_parameters}, ...), got shape {describe_shape(x.shape)}"
            )
        a = a.reshape(1, num_parameters, *(1,) * (x.ndim - 2))
    y: Array = np.where(x > 0, x, a * x)
    return y, PReLUCache(x, a)


def _backward(
    params: Params, cache: PReLUCache, dy: Array, /, *, num_parameters: int, init: float
) -> tuple[Array, Params]:
    check_cache(cache, PReLUCache, _NAME)
    check_keys(params, _KEYS, _NAME)
    x = cache.x
    check_param(params, "a", (num_parameters,), _NAME, x.dtype)
    check_dy(dy, x.shape, x.dtype, _NAME)
    dx: Array = np.where(x > 0, dy, cache.a * dy)
    term = dy * np.minimum(x, 0)
    if num_parameters > 1:
        da: Array = term.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    else:
        da = term.sum().reshape(1)
    return dx, {"a": da}


def prelu(
    num_parameters: int = 1, init: float = 0.25, *, dtype: npt.DTypeLike = np.float32
) -> Layer[PReLUCache]:
    """A relu with a learned negative slope ``a`` (param ``"a"``, shape ``(num_parameters,)``).

    Args:
        num_parameters: 1 (one slope) or the channel count ``C`` of an input ``(N, C, *S)``.
        init: the slopes' initial value.
        dtype: the slopes' dtype.

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> layer = prelu()
        >>> _, params = layer.init(fdl.random.key(0), (None, 2))
        >>> layer.forward(params, np.array([[-2.0, 3.0]], np.float32))[0].tolist()
        [[-0.5, 3.0]]
    """
    return build(
        _NAME,
        _shapes,
        _forward,
        _backward,
        dtype=dtype,
        num_parameters=positive_int(num_parameters, "num_parameters", _NAME),
        init=real(init, "init", _NAME),
    )
