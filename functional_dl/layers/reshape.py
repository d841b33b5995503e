"""Shape layers: ``flatten`` and ``reshape``. They move no data (NumPy views) and have no params.

``flatten()`` maps ``(batch, d1, ..., dk)`` to ``(batch, d1 * ... * dk)``, keeping the batch axis
(``torch.nn.Flatten()``); ``reshape(shape)`` maps ``(batch, ...)`` to ``(batch, *shape)``, where one
entry of ``shape`` may be ``-1``. Backward reshapes ``dy`` back to the input's shape.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_dy, check_float, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["ReshapeCache", "flatten", "reshape"]


class ReshapeCache(NamedTuple):
    """The shapes on both sides, to check and reshape ``dy``."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dtype: np.dtype[Any]  # the input's, which dy must have
    kind: str  # "flatten" or "reshape": which backward this cache belongs to


def _resolve(features: tuple[int | None, ...], target: tuple[int, ...] | None, name: str) -> tuple[int, ...]:
    """The output's non-batch shape for input features ``features`` (``None`` target: flatten)."""
    if any(d is None for d in features):
        raise ShapeError(name, f"the non-batch axes must be known, got {describe_shape((None, *features))}")
    size = math.prod(d for d in features if d is not None)
    if target is None:
        return (size,)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or size % known:
            raise ShapeError(name, f"cannot reshape {size} features into {describe_shape(target)}")
        return tuple(size // known if d == -1 else d for d in target)
    if known != size:
        raise ShapeError(name, f"cannot reshape {size} features into {describe_shape(target)}")
    return target


def _shapes(in_shape: Shape, /, *, target: tuple[int, ...] | None, name: str) -> tuple[Shape, ArraySpecs]:
    if len(in_shape) < 1:
        raise ShapeError(name, "expected an input shape with a batch axis")
    return (in_shape[0], *_resolve(in_shape[1:], target, name)), EMPTY_SPECS


def _forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    target: tuple[int, ...] | None,
    name: str,
    **slips: object,
) -> tuple[Array, ReshapeCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    check_no_params(params, name)
    check_float(x, name)
    if x.ndim < 1:
        raise ShapeError(name, "expected an input with a batch axis, got a scalar")
    y = x.reshape((x.shape[0], *_resolve(x.shape[1:], target, name)))
    return y, ReshapeCache(x.shape, y.shape, x.dtype, name)


def _backward(params: Params, cache: ReshapeCache, dy: Array, /, *, name: str) -> tuple[Array, Params]:
    if type(cache) is not ReshapeCache or cache.kind != name:
        wrong_cache(cache, f"ReshapeCache of {name}", name)
    check_no_params(params, name)
    check_dy(dy, cache.out_shape, cache.dtype, name)
    return dy.reshape(cache.in_shape), EMPTY


def _reshape_layer(name: str, target: tuple[int, ...] | None) -> Layer[ReshapeCache]:
    shapes, forward = partial(_shapes, target=target, name=name), partial(_forward, target=target, name=name)
    return build(name, shapes, forward, partial(_backward, name=name))


def flatten() -> Layer[ReshapeCache]:
    """``(batch, d1, ..., dk) -> (batch, d1 * ... * dk)``, keeping the batch axis.

    Example:
        >>> import numpy as np
        >>> flatten().forward({}, np.zeros((2, 3, 4)))[0].shape
        (2, 12)
    """
    return _reshape_layer("flatten", None)


def reshape(shape: tuple[int, ...]) -> Layer[ReshapeCache]:
    """``(batch, ...) -> (batch, *shape)``; one entry of ``shape`` may be ``-1`` (inferred).

    Example:
        >>> import numpy as np
        >>> reshape((2, -1)).forward({}, np.zeros((5, 12)))[0].shape
        (5, 2, 6)
    """
    if not isinstance(shape, tuple | list) or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) for d in shape
    ):
        raise DomainError("reshape", f"shape must be a tuple of ints, got {shape!r}")
    target = tuple(int(d) for d in shape)
    if sum(d == -1 for d in target) > 1 or any(d < -1 or d == 0 for d in target):
        raise DomainError("reshape", f"shape needs positive sizes and at most one -1, got {shape!r}")
    return _reshape_layer("reshape", target)
