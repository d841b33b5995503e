"""Pooling to a fixed output size: ``global_avg_pool`` and ``adaptive_avg_pool2d``.

``global_avg_pool`` averages every spatial position: ``(N, C, *S) -> (N, C)``,
``y[n, c] = mean_p x[n, c, p]`` and ``dx[n, c, p] = dy[n, c] / prod(S)``.

``adaptive_avg_pool2d((oh, ow))`` averages bins chosen as ``torch.nn.AdaptiveAvgPool2d`` does:
output row ``i`` covers input rows ``floor(i H / oh)`` to ``ceil((i + 1) H / oh)`` (exclusive),
and likewise for columns. Bins can overlap and differ in size, so instead of windows this uses
two small averaging matrices ``A_h (oh, H)`` and ``A_w (ow, W)`` (``1 / len(bin)`` on each bin)::

    y  = A_h x A_w^T          dx = A_h^T dy A_w

i.e. two matrix products per call, exact and loop-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_cache, check_dy, check_float, check_no_params, not_an_array
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers._args import positive_int
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["AdaptiveCache", "GlobalPoolCache", "adaptive_avg_pool2d", "global_avg_pool"]


class GlobalPoolCache(NamedTuple):
    """What ``global_avg_pool``'s backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    dtype: np.dtype[Any]  # the input's, which dy must have


class AdaptiveCache(NamedTuple):
    """What ``adaptive_avg_pool2d``'s backward needs."""

    in_shape: tuple[int, ...]  # (N, C, H, W)
    rows: Array  # (oh, H) averaging matrix
    cols: Array  # (ow, W) averaging matrix


def _global_shapes(in_shape: Shape, /) -> tuple[Shape, ArraySpecs]:
    if len(in_shape) < 3:
        raise ShapeError("global_avg_pool", f"expected (N, C, *spatial), got {describe_shape(in_shape)}")
    return in_shape[:2], EMPTY_SPECS


def _check_rank(x: Array, name: str, ok: bool, layout: str) -> None:
    """The slow path of the forwards' first check: ``x`` not an array, or not of rank ``layout``."""
    if not isinstance(x, np.ndarray):
        raise not_an_array(x, "the input", name)
    if not ok:
        raise ShapeError(name, f"expected {layout}, got shape {describe_shape(x.shape)}")


def _global_forward(params: Params, x: Array, ctx: Context = EVAL, /) -> tuple[Array, GlobalPoolCache]:
    check_no_params(params, "global_avg_pool")
    if type(x) is not np.ndarray or x.ndim < 3:
        _check_rank(
            x, "global_avg_pool", isinstance(x, np.ndarray) and x.ndim >= 3, "an input (N, C, *spatial)"
        )
    check_float(x, "global_avg_pool")
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
    return build("global_avg_pool", _global_shapes, _global_forward, _global_backward)


@lru_cache(maxsize=64)
def _bin_matrix(n_in: int, n_out: int, dtype: np.dtype[np.floating]) -> Array:
    starts = (np.arange(n_out) * n_in) // n_out
    ends = -((-(np.arange(n_out) + 1) * n_in) // n_out)  # ceil division
    cols = np.arange(n_in)
    inside = (cols >= starts[:, None]) & (cols < ends[:, None])
    matrix: Array = (inside / (ends - starts)[:, None]).astype(dtype)
    matrix.flags.writeable = False  # shared between calls through the cache
    return matrix


def bin_matrix(n_in: int, n_out: int, dtype: np.dtype[np.floating]) -> Array:
    """The ``(n_out, n_in)`` matrix averaging PyTorch's adaptive bins (read-only, cached).

    Example:
        >>> bin_matrix(5, 3, np.dtype(np.float64)).round(3).tolist()
        [[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.333, 0.333, 0.333, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5]]
    """
    return _bin_matrix(n_in, n_out, dtype)


def _adaptive_shapes(in_shape: Shape, /, *, size: tuple[int | None, int | None]) -> tuple[Shape, ArraySpecs]:
    if len(in_shape) != 4:
        raise ShapeError("adaptive_avg_pool2d", f"expected (N, C, H, W), got {describe_shape(in_shape)}")
    out = tuple(n if o is None else o for n, o in zip(in_shape[2:], size, strict=True))
    return (*in_shape[:2], *out), EMPTY_SPECS


def _adaptive_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, size: tuple[int | None, int | None]
) -> tuple[Array, AdaptiveCache]:
    check_no_params(params, "adaptive_avg_pool2d")
    if type(x) is not np.ndarray or x.ndim != 4:
        _check_rank(
            x, "adaptive_avg_pool2d", isinstance(x, np.ndarray) and x.ndim == 4, "a 4-D input (N, C, H, W)"
        )
    check_float(x, "adaptive_avg_pool2d")
    h, w = x.shape[2:]
    rows = bin_matrix(h, h if size[0] is None else size[0], x.dtype)
    cols = bin_matrix(w, w if size[1] is None else size[1], x.dtype)
    y: Array = rows @ (x @ cols.T)
    return y, AdaptiveCache(x.shape, rows, cols)


def _adaptive_backward(params: Params, cache: AdaptiveCache, dy: Array, /) -> tuple[Array, Params]:
    check_cache(cache, AdaptiveCache, "adaptive_avg_pool2d")
    check_no_params(params, "adaptive_avg_pool2d")
    out = (*cache.in_shape[:2], cache.rows.shape[0], cache.cols.shape[0])
    check_dy(dy, out, cache.rows.dtype, "adaptive_avg_pool2d")
    dx: Array = (cache.rows.T @ dy) @ cache.cols
    return dx, EMPTY


def adaptive_avg_pool2d(output_size: int | Sequence[int | None] | None) -> Layer[AdaptiveCache]:
    """Average pooling to a fixed ``(oh, ow)`` whatever the input size, as PyTorch's.

    Args:
        output_size: an int (square output) or ``(oh, ow)``; ``None`` keeps that input size.

    In the example the two column bins of a width-3 input are ``{0, 1}`` and ``{1, 2}``.

    Example:
        >>> import numpy as np
        >>> y, _ = adaptive_avg_pool2d((1, 2)).forward({}, np.arange(6.0).reshape(1, 1, 2, 3))
        >>> y.tolist()
        [[[[2.0, 3.0]]]]
    """
    pair: tuple[object, ...] = (
        tuple(output_size) if isinstance(output_size, tuple | list) else (output_size, output_size)
    )
    sizes = [None if o is None else positive_int(o, "output_size", "adaptive_avg_pool2d") for o in pair]
    if len(sizes) != 2:
        raise DomainError(
            "adaptive_avg_pool2d", f"output_size must be positive ints or None, got {output_size!r}"
        )
    size = (sizes[0], sizes[1])
    shapes, forward = partial(_adaptive_shapes, size=size), partial(_adaptive_forward, size=size)
    return build("adaptive_avg_pool2d", shapes, forward, _adaptive_backward)
