"""Average pooling to a fixed output size: ``global_avg_pool``, ``adaptive_avg_pool1d/2d``.

``global_avg_pool`` averages every spatial position: ``(N, C, *S) -> (N, C)``,
``y[n, c] = mean_p x[n, c, p]`` and ``dx[n, c, p] = dy[n, c] / prod(S)``.

``adaptive_avg_pool1d(o)`` and ``adaptive_avg_pool2d((oh, ow))`` average bins chosen as
``torch.nn.AdaptiveAvgPool1d/2d`` do: output ``i`` along an axis of length ``n`` covers the inputs
``floor(i n / o)`` to ``ceil((i + 1) n / o)`` (exclusive; :mod:`functional_dl.layers._adaptive_bins`).
Bins can overlap and differ in size, so instead of windows this uses a small averaging matrix
per axis, ``A (o, n)`` with ``1 / len(bin)`` on each bin: for ``(N, C, L)`` and ``(N, C, H, W)``::

    y  = x A^T                dx = dy A
    y  = A_h x A_w^T          dx = A_h^T dy A_w

i.e. one matrix product per axis and call, exact and loop-free.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_cache, check_dy, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.layers._adaptive_bins import (
    OutputSize,
    adaptive_layer,
    bin_matrix,
    check_global_input,
    check_input,
    global_shapes,
)
from functional_dl.layers._builder import build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

__all__ = [
    "AdaptiveCache",
    "GlobalPoolCache",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "global_avg_pool",
]


class GlobalPoolCache(NamedTuple):
    """What ``global_avg_pool``'s backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    dtype: np.dtype[Any]  # the input's, which dy must have


class AdaptiveCache(NamedTuple):
    """What ``adaptive_avg_pool1d/2d``'s backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    mats: tuple[Array, ...]  # per spatial axis, its (o, n) averaging matrix


def _global_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, **slips: object
) -> tuple[Array, GlobalPoolCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("global_avg_pool", slips)
    check_global_input(params, x, "global_avg_pool")
    return x.mean(axis=tuple(range(2, x.ndim))), GlobalPoolCache(x.shape, x.dtype)


def _global_backward(params: Params, cache: GlobalPoolCache, dy: Array, /) -> tuple[Array, Params]:
    check_cache(cache, GlobalPoolCache, "global_avg_pool")
    check_no_params(params, "global_avg_pool")
    check_dy(dy, cache.in_shape[:2], cache.dtype, "global_avg_pool")
    spatial = cache.in_shape[2:]
    dx = np.empty(cache.in_shape, dtype=dy.dtype)
    dx[...] = (dy / dy.dtype.type(np.prod(spatial))).reshape(*dy.shape, *(1,) * len(spatial))
    return dx, EMPTY


def global_avg_pool() -> Layer[GlobalPoolCache]:
    """Average over all spatial axes: ``(N, C, *S) -> (N, C)`` (1-D, 2-D or more).

    Example:
        >>> import numpy as np
        >>> y, _ = global_avg_pool().forward({}, np.arange(8.0).reshape(1, 2, 2, 2))
        >>> y.tolist()
        [[1.5, 5.5]]
    """
    shapes = partial(global_shapes, name="global_avg_pool")
    return build("global_avg_pool", shapes, _global_forward, _global_backward)


def _adaptive_forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    size: tuple[int | None, ...],
    name: str,
    **slips: object,
) -> tuple[Array, AdaptiveCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    out = check_input(params, x, size, name)
    mats = tuple(bin_matrix(n, o, x.dtype) for n, o in zip(x.shape[2:], out, strict=True))
    y: Array = x @ mats[-1].T
    if len(mats) == 2:
        y = mats[0] @ y
    return y, AdaptiveCache(x.shape, mats)


def _adaptive_backward(
    params: Params, cache: AdaptiveCache, dy: Array, /, *, size: tuple[int | None, ...], name: str
) -> tuple[Array, Params]:
    check_cache(cache, AdaptiveCache, name)
    if len(cache.mats) != len(size):  # adaptive_avg_pool1d and 2d share the cache type
        wrong_cache(cache, f"AdaptiveCache of a {len(size)}-D pooling", name)
    check_no_params(params, name)
    check_dy(dy, (*cache.in_shape[:2], *(m.shape[0] for m in cache.mats)), cache.mats[0].dtype, name)
    dx = cache.mats[0].T @ dy if len(cache.mats) == 2 else dy
    return dx @ cache.mats[-1], EMPTY


def adaptive_avg_pool1d(output_size: int | tuple[int | None] | None) -> Layer[AdaptiveCache]:
    """Average pooling of ``(N, C, L)`` to a fixed length ``o``, as ``torch.nn.AdaptiveAvgPool1d``.

    Args:
        output_size: ``o``, a positive int (or a 1-tuple); ``None`` keeps the length, which
            PyTorch's 1-D module refuses but its 2-D one accepts per axis.

    Raises:
        DomainError: ``output_size`` is not a positive int or ``None``.

    In the example the three bins of a length-4 input are ``{0, 1}``, ``{1, 2}`` and ``{2, 3}``.

    Example:
        >>> import numpy as np
        >>> y, _ = adaptive_avg_pool1d(3).forward({}, np.array([[[0.0, 2.0, 4.0, 8.0]]]))
        >>> y.tolist()
        [[[1.0, 3.0, 6.0]]]
    """
    return adaptive_layer("adaptive_avg_pool1d", 1, output_size, _adaptive_forward, _adaptive_backward)


def adaptive_avg_pool2d(output_size: OutputSize) -> Layer[AdaptiveCache]:
    """Average pooling to a fixed ``(oh, ow)`` whatever the input size, as PyTorch's.

    Args:
        output_size: an int (square output) or ``(oh, ow)``; ``None`` keeps that input size.

    Raises:
        DomainError: ``output_size`` is not positive ints or ``None``.

    In the example the two column bins of a width-3 input are ``{0, 1}`` and ``{1, 2}``.

    Example:
        >>> import numpy as np
        >>> y, _ = adaptive_avg_pool2d((1, 2)).forward({}, np.arange(6.0).reshape(1, 1, 2, 3))
        >>> y.tolist()
        [[[[2.0, 3.0]]]]
    """
    return adaptive_layer("adaptive_avg_pool2d", 2, output_size, _adaptive_forward, _adaptive_backward)
