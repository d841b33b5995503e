"""Max and average pooling in 1-D (``NCL``) and 2-D (``NCHW``), as ``torch.nn.functional``'s.

Each output is a reduction over a window of the padded input (kernel ``k``, stride ``s``, default
``s = k``; output size ``floor((n + pad_before + pad_after - k) / s) + 1``)::

    max:  y[n, c, p] = max_i xp[n, c, p s + i]      dx gets dy at the *first* maximal tap
    avg:  y[n, c, p] = sum_i xp[n, c, p s + i] / D  dx gets dy / D at every tap

Max pooling pads with ``-inf`` (padding is never selected); the tie rule is PyTorch's: taps are
scanned in row-major order and only a strictly larger value (or a NaN) replaces the running
maximum, so ties send the whole gradient to the first maximal tap. Average pooling pads with
zeros and divides by ``D = prod(k)`` (``count_include_pad=True``, PyTorch's default) or by the
number of taps inside the unpadded input (``count_include_pad=False``).

Forward and backward loop over the ``prod(k)`` kernel offsets doing whole-array work on strided
slices (:mod:`functional_dl.layers._windows`); memory stays proportional to input and output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import repeat
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from functional_dl.errors import ShapeError, describe_shape
from functional_dl.layers._checks import check_float, check_keys, check_same_shape
from functional_dl.layers._windows import (
    Pads,
    check_fits,
    crop,
    offset_slices,
    offsets,
    out_sizes,
    pad,
    resolve_padding,
    size,
    to_tuple,
)
from functional_dl.types import EMPTY, EVAL, Array, Context, Key, Layer, Params, Shape, stateless

__all__ = [
    "AvgPoolCache",
    "MaxPoolCache",
    "PoolSpec",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d",
]

_NO_PARAMS: frozenset[str] = frozenset()
C = TypeVar("C")


class PoolSpec(NamedTuple):
    """Pooling hyperparameters, one entry per spatial axis."""

    name: str  # "max_pool2d", ...
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads
    count_include_pad: bool = True  # average pooling only


class MaxPoolCache(NamedTuple):
    """What max pooling's backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    argmax: npt.NDArray[np.int16]  # (N, C, *Out), row-major index of the chosen tap in its window


class AvgPoolCache(NamedTuple):
    """What average pooling's backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    divisor: Array  # broadcastable to (N, C, *Out): taps counted per window


_ONE = (1,)


def _check(params: Params, x: Array, spec: PoolSpec) -> tuple[int, ...]:
    """Validate input; return the spatial output size."""
    if params:
        check_keys(params, _NO_PARAMS, spec.name)
    nd = len(spec.kernel)
    if x.ndim != nd + 2:
        layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
        raise ShapeError(
            spec.name, f"expected a {nd + 2}-D input {layout}, got shape {describe_shape(x.shape)}"
        )
    check_float(x, spec.name)
    check_fits(x.shape[2:], spec.pads, spec.kernel, _ONE * nd, spec.name)
    padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], spec.pads, strict=True)]
    return out_sizes(padded, spec.kernel, spec.stride, _ONE * nd)


def _init(key: Key, in_shape: Shape, /, *, spec: PoolSpec) -> tuple[Shape, Params]:
    nd = len(spec.kernel)
    if len(in_shape) != nd + 2:
        raise ShapeError(
            spec.name, f"expected an input shape with {nd} spatial axes, got {describe_shape(in_shape)}"
        )
    spatial = in_shape[2:]
    check_fits(spatial, spec.pads, spec.kernel, _ONE * nd, spec.name)
    out = tuple(
        None if n is None else (n + lo + hi - k) // s + 1
        for n, (lo, hi), k, s in zip(spatial, spec.pads, spec.kernel, spec.stride, strict=True)
    )
    return (*in_shape[:2], *out), EMPTY


def _scatter(
    in_shape: tuple[int, ...], spec: PoolSpec, out: tuple[int, ...], parts: Iterable[Array]
) -> Array:
    """``dx`` from per-offset gradients ``parts`` (each ``(N, C, *out)``, in offset order).

    Each part is summed into the padded input at its offset's strided slice; the padding is then
    cropped off. Windows overlap when the stride is smaller than the kernel, hence accumulation.
    """
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(in_shape[2:], spec.pads, strict=True))
    dxp: Array | None = None
    lead = (slice(None), slice(None))
    for o, part in zip(offsets(spec.kernel), parts, strict=False):
        if dxp is None:
            dxp = np.zeros((*in_shape[:2], *padded), dtype=part.dtype)
        target = dxp[lead + offset_slices(o, spec.stride, _ONE * len(out), out)]
        target += part  # our own fresh buffer: in place is safe
    assert dxp is not None  # a kernel has at least one offset
    return np.ascontiguousarray(crop(dxp, spec.pads))


def _max_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: PoolSpec
) -> tuple[Array, MaxPoolCache]:
    out = _check(params, x, spec)
    xp = pad(x, spec.pads, value=-np.inf)
    lead = (slice(None), slice(None))
    taps = [lead + offset_slices(o, spec.stride, _ONE * len(out), out) for o in offsets(spec.kernel)]
    best = xp[taps[0]].copy()
    argmax = np.zeros(best.shape, dtype=np.int16)
    for k, sl in enumerate(taps[1:], start=1):
        tap = xp[sl]
        better = tap > best
        better |= np.isnan(tap)  # PyTorch lets a NaN win, so NaN propagates
        np.copyto(best, tap, where=better)
        np.copyto(argmax, np.int16(k), where=better)
    return best, MaxPoolCache(x.shape, argmax)


def _max_backward(
    params: Params, cache: MaxPoolCache, dy: Array, /, *, spec: PoolSpec
) -> tuple[Array, Params]:
    check_same_shape(dy, cache.argmax.shape, spec.name)
    check_float(dy, spec.name, "dy")
    zero = dy.dtype.type(0)
    parts = (np.where(cache.argmax == k, dy, zero) for k in range(size(spec.kernel)))
    return _scatter(cache.in_shape, spec, cache.argmax.shape[2:], parts), EMPTY


def _inside_counts(n: int, pads: tuple[int, int], k: int, s: int, out: int) -> npt.NDArray[np.int64]:
    """Per output position along one axis: how many taps of its window fall inside the input."""
    start = np.arange(out) * s - pads[0]
    return np.minimum(start + k, n) - np.maximum(start, 0)


def _divisor(x_shape: tuple[int, ...], out: tuple[int, ...], spec: PoolSpec, dtype: npt.DTypeLike) -> Array:
    nd = len(out)
    if spec.count_include_pad or not any(lo or hi for lo, hi in spec.pads):
        return np.full((1,) * (nd + 2), size(spec.kernel), dtype=dtype)
    counts = np.ones((1, 1), dtype=np.int64)
    for axis in range(nd):
        c = _inside_counts(
            x_shape[2 + axis], spec.pads[axis], spec.kernel[axis], spec.stride[axis], out[axis]
        )
        counts = counts[..., None] * c
    result: Array = counts.astype(dtype)
    return result


def _avg_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: PoolSpec
) -> tuple[Array, AvgPoolCache]:
    out = _check(params, x, spec)
    xp = pad(x, spec.pads)
    lead = (slice(None), slice(None))
    total: Array | None = None
    for o in offsets(spec.kernel):
        tap = xp[lead + offset_slices(o, spec.stride, _ONE * len(out), out)]
        if total is None:
            total = tap.copy()
        else:
            total += tap
    assert total is not None
    divisor = _divisor(x.shape, out, spec, x.dtype)
    total /= divisor
    return total, AvgPoolCache(x.shape, divisor)


def _avg_backward(
    params: Params, cache: AvgPoolCache, dy: Array, /, *, spec: PoolSpec
) -> tuple[Array, Params]:
    n, c = cache.in_shape[:2]
    padded = tuple(m + lo + hi for m, (lo, hi) in zip(cache.in_shape[2:], spec.pads, strict=True))
    out = out_sizes(padded, spec.kernel, spec.stride, _ONE * len(padded))
    check_same_shape(dy, (n, c, *out), spec.name)
    check_float(dy, spec.name, "dy")
    return _scatter(cache.in_shape, spec, out, repeat(dy / cache.divisor, size(spec.kernel))), EMPTY


def _spec(
    name: str,
    nd: int,
    *,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int | Sequence[int]],
    count_include_pad: bool = True,
) -> PoolSpec:
    kernel = to_tuple(kernel_size, nd, "kernel_size", name)
    strides = kernel if stride is None else to_tuple(stride, nd, "stride", name)
    pads = resolve_padding(padding, kernel, _ONE * nd, strides, name)
    if any(max(p) > k // 2 for p, k in zip(pads, kernel, strict=True)):
        raise ValueError(f"{name}: padding {pads} must be at most half the kernel {kernel} (PyTorch's rule)")
    if size(kernel) > np.iinfo(np.int16).max:  # max pooling stores the chosen tap as int16
        raise ValueError(f"{name}: kernel {kernel} has too many taps")
    return PoolSpec(name, kernel, strides, pads, count_include_pad)


def _layer(
    spec: PoolSpec, forward: Callable[..., tuple[Array, C]], backward: Callable[..., tuple[Array, Params]]
) -> Layer[C]:
    return Layer(
        init_with_state=stateless(partial(_init, spec=spec)),
        forward=partial(forward, spec=spec),
        backward=partial(backward, spec=spec),
        name=spec.name,
        reads_context=False,
    )


def _avg_layer(
    nd: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int | Sequence[int]],
    count_include_pad: bool,
) -> Layer[AvgPoolCache]:
    name = f"avg_pool{nd}d"
    spec = _spec(
        name, nd, kernel_size=kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad
    )
    return _layer(spec, _avg_forward, _avg_backward)


def max_pool1d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
) -> Layer[MaxPoolCache]:
    """Max pooling over ``(N, C, L)``; see :func:`max_pool2d`."""
    return _layer(
        _spec("max_pool1d", 1, kernel_size=kernel_size, stride=stride, padding=padding),
        _max_forward,
        _max_backward,
    )


def max_pool2d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
) -> Layer[MaxPoolCache]:
    """Max pooling over ``(N, C, H, W)``, as ``torch.nn.functional.max_pool2d``.

    Args:
        kernel_size: window size, an int or ``(kh, kw)``.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding, at most half the kernel per side.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
        >>> y, cache = max_pool2d(2).forward({}, x)
        >>> y.ravel().tolist()
        [3.0]
        >>> max_pool2d(2).backward({}, cache, np.ones_like(y))[0].ravel().tolist()  # first max wins
        [0.0, 1.0, 0.0, 0.0]
    """
    return _layer(
        _spec("max_pool2d", 2, kernel_size=kernel_size, stride=stride, padding=padding),
        _max_forward,
        _max_backward,
    )


def avg_pool1d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    count_include_pad: bool = True,
) -> Layer[AvgPoolCache]:
    """Average pooling over ``(N, C, L)``; see :func:`avg_pool2d`."""
    return _avg_layer(1, kernel_size, stride, padding, count_include_pad)


def avg_pool2d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    count_include_pad: bool = True,
) -> Layer[AvgPoolCache]:
    """Average pooling over ``(N, C, H, W)``, as ``torch.nn.functional.avg_pool2d``.

    Args:
        kernel_size: window size, an int or ``(kh, kw)``.
        stride: window step; defaults to ``kernel_size``.
        padding: zero padding, at most half the kernel per side.
        count_include_pad: divide by the whole window size (True, PyTorch's default) or only by
            the taps that fall inside the input.

    Example:
        >>> import numpy as np
        >>> y, _ = avg_pool2d(2).forward({}, np.arange(16.0).reshape(1, 1, 4, 4))
        >>> y[0, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
    """
    return _avg_layer(2, kernel_size, stride, padding, count_include_pad)
