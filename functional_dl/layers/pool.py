"""Max and average pooling in 1-D (``NCL``) and 2-D (``NCHW``), as ``torch.nn.functional``'s.

Each output is a reduction over a window of the padded input (kernel ``k``, stride ``s``, default
``s = k``, dilation ``d``, max pooling only, default 1)::

    max:  y[n, c, p] = max_i xp[n, c, p s + i d]    dx gets dy at the *first* maximal tap
    avg:  y[n, c, p] = sum_i xp[n, c, p s + i] / D  dx gets dy / D at every tap

Output size per axis, for input length ``n`` padded by ``lo`` before and ``hi`` after::

    out = floor((n + lo + hi - d (k - 1) - 1) / s) + 1      (ceil_mode=False)
    out = ceil((n + lo + hi - d (k - 1) - 1) / s) + 1       (ceil_mode=True), then
          out -= 1 if (out - 1) s >= n + lo

With ``ceil_mode`` the last window may run past the padded input (the *overhang*), but as in
PyTorch it must start inside the input or the left padding: a window that would start in the right
padding is dropped. The overhang is never selected by max pooling and never counted by average
pooling.

Max pooling pads with ``-inf`` (padding is never selected); the tie rule is PyTorch's: taps are
scanned in row-major order and only a strictly larger value (or a NaN) replaces the running
maximum, so ties send the whole gradient to the first maximal tap. Average pooling pads with
zeros and divides by the number of taps inside the padded input, ``D = prod(k)`` except for
ceil-mode windows that overhang (``count_include_pad=True``, PyTorch's default), or by the number
of taps inside the unpadded input (``count_include_pad=False``).

Forward and backward loop over the ``prod(k)`` kernel offsets doing whole-array work on strided
slices (:mod:`functional_dl.layers._windows`); memory stays proportional to input and output.
Max pooling over non-overlapping windows (stride = kernel, no padding or dilation) takes a faster
path with the same results (:mod:`functional_dl.layers._max_tiles`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_float,
    check_no_params,
    not_an_array,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers import _max_tiles
from functional_dl.layers._args import flag
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.layers._windows import (
    Pads,
    check_fits,
    crop,
    extents,
    offset_slices,
    offsets,
    pad,
    resolve_padding,
    size,
    to_tuple,
)
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = [
    "AvgPoolCache",
    "MaxPoolCache",
    "PoolSpec",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d",
]


class PoolSpec(NamedTuple):
    """Pooling hyperparameters, one entry per spatial axis."""

    name: str  # "max_pool2d", ...
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads
    dilation: tuple[int, ...]  # all ones for average pooling
    ceil_mode: bool
    count_include_pad: bool = True  # average pooling only


class MaxPoolCache(NamedTuple):
    """What max pooling's backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    # The general path: (N, C, *Out), the row-major index of the chosen tap in its window.
    argmax: npt.NDArray[np.int16] | None
    picks: _max_tiles.Picks  # the tile path: the chosen tap along each axis; () on the general path
    dtype: np.dtype[Any]  # the input's, which dy must have
    spec: PoolSpec  # the layer that made it (every max pooling shares this type)


class AvgPoolCache(NamedTuple):
    """What average pooling's backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    divisor: Array  # broadcastable to (N, C, *Out): taps counted per window; the input's dtype
    spec: PoolSpec  # the layer that made it (every average pooling shares this type)


def _axis_out(n: int, pads: tuple[int, int], k: int, s: int, d: int, *, ceil_mode: bool) -> int:
    """Output length along one axis (the formula in the module docstring); may be < 1."""
    lo, hi = pads
    span = n + lo + hi - (d * (k - 1) + 1)
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + lo:
        out -= 1  # PyTorch drops a last window that would start in the right padding
    return out


def _out_shape(spatial: Sequence[int | None], spec: PoolSpec) -> tuple[int | None, ...]:
    """Spatial output size (``None`` where the input size is unknown); raises if it would be empty."""
    axes = zip(spatial, spec.pads, spec.kernel, spec.stride, spec.dilation, strict=True)
    out = tuple(
        None if n is None else _axis_out(n, p, k, s, d, ceil_mode=spec.ceil_mode) for n, p, k, s, d in axes
    )
    if not spec.ceil_mode:
        check_fits(spatial, spec.pads, spec.kernel, spec.dilation, spec.name)
    elif any(o is not None and o < 1 for o in out):
        # ceil mode accepts a kernel larger than the padded input by less than one stride, as PyTorch
        raise ShapeError(
            spec.name,
            f"kernel of extent {describe_shape(extents(spec.kernel, spec.dilation))} is larger than the "
            f"padded input by a stride {spec.stride} or more (input {describe_shape(spatial)}, "
            f"padding {spec.pads}, ceil_mode=True)",
        )
    return out


def _geometry(spatial: Sequence[int], spec: PoolSpec) -> tuple[tuple[int, ...], Pads]:
    """The spatial output size and the padding to apply.

    That is ``spec.pads`` with the ceil-mode overhang of the last window added after (zero without
    ``ceil_mode``).
    """
    out = tuple(o for o in _out_shape(spatial, spec) if o is not None)
    work = tuple(
        (lo, max(hi, (o - 1) * s + e - n - lo))
        for n, (lo, hi), o, s, e in zip(
            spatial, spec.pads, out, spec.stride, extents(spec.kernel, spec.dilation), strict=True
        )
    )
    return out, work


def _check(params: Params, x: Array, spec: PoolSpec) -> tuple[tuple[int, ...], Pads]:
    """Validate input; return the spatial output size and the padding to apply (:func:`_geometry`)."""
    check_no_params(params, spec.name)
    nd = len(spec.kernel)
    if type(x) is not np.ndarray or x.ndim != nd + 2:
        if not isinstance(x, np.ndarray):
            raise not_an_array(x, "the input", spec.name)
        if x.ndim != nd + 2:
            layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
            raise ShapeError(
                spec.name, f"expected a {nd + 2}-D input {layout}, got shape {describe_shape(x.shape)}"
            )
    check_float(x, spec.name)
    return _geometry(x.shape[2:], spec)


def _check_backward(
    params: Params, cache: MaxPoolCache | AvgPoolCache, kind: type, dy: Array, spec: PoolSpec
) -> tuple[tuple[int, ...], Pads]:
    """Validate the cache, params and ``dy``; return the geometry of the forward (:func:`_geometry`)."""
    check_cache(cache, kind, spec.name)
    dtype = cache.dtype if isinstance(cache, MaxPoolCache) else cache.divisor.dtype
    if cache.spec is not spec and cache.spec != spec:
        wrong_cache(cache, f"{kind.__name__} of this {spec.name}", spec.name)
    check_no_params(params, spec.name)
    out, pads = _geometry(cache.in_shape[2:], spec)
    check_dy(dy, (*cache.in_shape[:2], *out), dtype, spec.name)
    return out, pads


def _shapes(in_shape: Shape, /, *, spec: PoolSpec) -> tuple[Shape, ArraySpecs]:
    nd = len(spec.kernel)
    if len(in_shape) != nd + 2:
        raise ShapeError(
            spec.name, f"expected an input shape with {nd} spatial axes, got {describe_shape(in_shape)}"
        )
    return (*in_shape[:2], *_out_shape(in_shape[2:], spec)), EMPTY_SPECS


def _scatter(
    in_shape: tuple[int, ...], spec: PoolSpec, out: tuple[int, ...], pads: Pads, parts: Iterable[Array]
) -> Array:
    """``dx`` from per-offset gradients ``parts`` (each ``(N, C, *out)``, in offset order).

    Each part is summed into the input padded by ``pads`` at its offset's strided slice; the
    padding is then cropped off. Windows overlap when the stride is smaller than the kernel, hence
    accumulation.
    """
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(in_shape[2:], pads, strict=True))
    dxp: Array | None = None
    lead = (slice(None), slice(None))
    for o, part in zip(offsets(spec.kernel), parts, strict=False):
        if dxp is None:
            dxp = np.zeros((*in_shape[:2], *padded), dtype=part.dtype)
        target = dxp[lead + offset_slices(o, spec.stride, spec.dilation, out)]
        target += part  # our own fresh buffer: in place is safe
    assert dxp is not None  # a kernel has at least one offset
    return np.ascontiguousarray(crop(dxp, pads))


def _max_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: PoolSpec, **slips: object
) -> tuple[Array, MaxPoolCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(spec.name, slips)
    out, pads = _check(params, x, spec)
    if _max_tiles.applies(spec.kernel, spec.stride, spec.dilation, pads):
        fast = _max_tiles.max_and_picks(x, spec.kernel, out)
        if fast is not None:
            return fast[0], MaxPoolCache(x.shape, None, fast[1], x.dtype, spec)
    return _max_forward_windows(x, spec, out, pads)


def _max_forward_windows(
    x: Array, spec: PoolSpec, out: tuple[int, ...], pads: Pads
) -> tuple[Array, MaxPoolCache]:
    """The general max pooling forward (the reference for :mod:`functional_dl.layers._max_tiles`)."""
    xp = pad(x, pads, value=-np.inf)
    lead = (slice(None), slice(None))
    taps = [lead + offset_slices(o, spec.stride, spec.dilation, out) for o in offsets(spec.kernel)]
    best = xp[taps[0]].copy()
    argmax = np.zeros(best.shape, dtype=np.int16)
    for k, sl in enumerate(taps[1:], start=1):
        tap = xp[sl]
        better = tap > best
        better |= np.isnan(tap)  # PyTorch lets a NaN win, so NaN propagates
        np.copyto(best, tap, where=better)
        np.copyto(argmax, np.int16(k), where=better)
    return best, MaxPoolCache(x.shape, argmax, (), x.dtype, spec)


def _max_backward(
    params: Params, cache: MaxPoolCache, dy: Array, /, *, spec: PoolSpec
) -> tuple[Array, Params]:
    out, pads = _check_backward(params, cache, MaxPoolCache, dy, spec)
    if cache.argmax is None:
        return _max_tiles.scatter(cache.picks, dy, cache.in_shape, spec.kernel), EMPTY
    zero = dy.dtype.type(0)
    parts = (np.where(cache.argmax == k, dy, zero) for k in range(size(spec.kernel)))
    return _scatter(cache.in_shape, spec, out, pads, parts), EMPTY


def _window_counts(
    n: int, pads: tuple[int, int], k: int, s: int, out: int, *, include_pad: bool
) -> npt.NDArray[np.int64]:
    """Per output position along one axis: how many taps of its window fall inside the padded input.

    With ``include_pad=False``, inside the input itself. Taps in the ceil-mode overhang never count.
    """
    lo, hi = pads
    start = np.arange(out) * s - lo
    lower, upper = (-lo, n + hi) if include_pad else (0, n)
    return np.minimum(start + k, upper) - np.maximum(start, lower)


def _divisor(x_shape: tuple[int, ...], out: tuple[int, ...], spec: PoolSpec, dtype: npt.DTypeLike) -> Array:
    """``D`` broadcastable to ``(N, C, *out)``: the product over axes of :func:`_window_counts`."""
    nd = len(out)
    per_axis = [
        _window_counts(n, p, k, s, o, include_pad=spec.count_include_pad)
        for n, p, k, s, o in zip(x_shape[2:], spec.pads, spec.kernel, spec.stride, out, strict=True)
    ]
    if all(np.all(c == k) for c, k in zip(per_axis, spec.kernel, strict=True)):
        return np.full((1,) * (nd + 2), size(spec.kernel), dtype=dtype)  # a scalar divides faster
    counts = np.ones((1, 1), dtype=np.int64)
    for c in per_axis:
        counts = counts[..., None] * c
    result: Array = counts.astype(dtype)
    return result


def _avg_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: PoolSpec, **slips: object
) -> tuple[Array, AvgPoolCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(spec.name, slips)
    out, pads = _check(params, x, spec)
    xp = pad(x, pads)
    lead = (slice(None), slice(None))
    total: Array | None = None
    for o in offsets(spec.kernel):
        tap = xp[lead + offset_slices(o, spec.stride, spec.dilation, out)]
        if total is None:
            total = tap.copy()
        else:
            total += tap
    assert total is not None
    divisor = _divisor(x.shape, out, spec, x.dtype)
    total /= divisor
    return total, AvgPoolCache(x.shape, divisor, spec)


def _avg_backward(
    params: Params, cache: AvgPoolCache, dy: Array, /, *, spec: PoolSpec
) -> tuple[Array, Params]:
    out, pads = _check_backward(params, cache, AvgPoolCache, dy, spec)
    return _scatter(cache.in_shape, spec, out, pads, repeat(dy / cache.divisor, size(spec.kernel))), EMPTY


def _spec(
    name: str,
    nd: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int | Sequence[int]],
    *,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> PoolSpec:
    kernel = to_tuple(kernel_size, nd, "kernel_size", name)
    strides = kernel if stride is None else to_tuple(stride, nd, "stride", name)
    dilations = to_tuple(dilation, nd, "dilation", name)
    pads = resolve_padding(padding, kernel, dilations, strides, name)
    if any(max(p) > k // 2 for p, k in zip(pads, kernel, strict=True)):
        raise DomainError(name, f"padding {pads} must be at most half the kernel {kernel} (PyTorch's rule)")
    if size(kernel) > np.iinfo(np.int16).max:  # max pooling stores the chosen tap as int16
        raise DomainError(name, f"kernel {kernel} has too many taps")
    ceil = flag(ceil_mode, "ceil_mode", name)
    return PoolSpec(
        name, kernel, strides, pads, dilations, ceil, flag(count_include_pad, "count_include_pad", name)
    )


def _avg_layer(
    nd: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int | Sequence[int]],
    *,
    ceil_mode: bool,
    count_include_pad: bool,
) -> Layer[AvgPoolCache]:
    name = f"avg_pool{nd}d"
    flags = {"ceil_mode": ceil_mode, "count_include_pad": count_include_pad}
    spec = _spec(name, nd, kernel_size, stride, padding, **flags)
    return build(name, _shapes, _avg_forward, _avg_backward, spec=spec)


def max_pool1d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> Layer[MaxPoolCache]:
    """Max pooling over ``(N, C, L)``, as ``torch.nn.functional.max_pool1d``; see :func:`max_pool2d`.

    Output length ``floor`` (or with ``ceil_mode`` ``ceil``) of
    ``(L + lo + hi - dilation (kernel_size - 1) - 1) / stride + 1``.
    """
    spec = _spec("max_pool1d", 1, kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)
    return build(spec.name, _shapes, _max_forward, _max_backward, spec=spec)


def max_pool2d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> Layer[MaxPoolCache]:
    """Max pooling over ``(N, C, H, W)``, as ``torch.nn.functional.max_pool2d``.

    Output size per axis ``floor((n + lo + hi - d (k - 1) - 1) / s) + 1`` for input size ``n``,
    padding ``lo`` before and ``hi`` after; with ``ceil_mode``, ``ceil`` instead of ``floor``, minus
    one if the last window would start in the right padding (PyTorch's rule).

    Args:
        kernel_size: window size, an int or ``(kh, kw)``.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding, at most half the kernel per side.
        dilation: step between the taps of a window, an int >= 1 or ``(dh, dw)``.
        ceil_mode: round the output size up: a last, partial window runs past the padded input.

    Raises:
        DomainError: a size, stride, padding or dilation out of range, or ``ceil_mode`` not a bool.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
        >>> y, cache = max_pool2d(2).forward({}, x)
        >>> y.ravel().tolist()
        [3.0]
        >>> max_pool2d(2).backward({}, cache, np.ones_like(y))[0].ravel().tolist()  # first max wins
        [0.0, 1.0, 0.0, 0.0]
        >>> max_pool2d(2, ceil_mode=True).forward({}, np.ones((1, 1, 3, 5)))[0].shape
        (1, 1, 2, 3)
    """
    spec = _spec("max_pool2d", 2, kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode)
    return build(spec.name, _shapes, _max_forward, _max_backward, spec=spec)


def avg_pool1d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Layer[AvgPoolCache]:
    """Average pooling over ``(N, C, L)``, as ``torch.nn.functional.avg_pool1d``; see :func:`avg_pool2d`.

    Output length ``floor`` (or with ``ceil_mode`` ``ceil``) of ``(L + lo + hi - kernel_size) / stride + 1``.
    """
    return _avg_layer(
        1, kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad
    )


def avg_pool2d(
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int | Sequence[int]] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Layer[AvgPoolCache]:
    """Average pooling over ``(N, C, H, W)``, as ``torch.nn.functional.avg_pool2d``.

    Output size per axis ``floor((n + lo + hi - k) / s) + 1`` for input size ``n``, padding ``lo``
    before and ``hi`` after; with ``ceil_mode``, ``ceil`` instead of ``floor``, minus one if the last
    window would start in the right padding (PyTorch's rule).

    Args:
        kernel_size: window size, an int or ``(kh, kw)``.
        stride: window step; defaults to ``kernel_size``.
        padding: zero padding, at most half the kernel per side.
        ceil_mode: round the output size up: a last, partial window runs past the padded input.
            Its divisor counts only the taps inside the padded input, as PyTorch's does.
        count_include_pad: divide by the taps inside the padded input (True, PyTorch's default;
            the whole window size except for ceil-mode windows) or only by those inside the input.

    Raises:
        DomainError: a size, stride or padding out of range, or ``ceil_mode`` or
            ``count_include_pad`` not a bool.

    Example:
        >>> import numpy as np
        >>> y, _ = avg_pool2d(2).forward({}, np.arange(16.0).reshape(1, 1, 4, 4))
        >>> y[0, 0].tolist()
        [[2.5, 4.5], [10.5, 12.5]]
        >>> x = np.arange(3.0).reshape(1, 1, 1, 3)
        >>> avg_pool2d((1, 2), ceil_mode=True).forward({}, x)[0].ravel().tolist()  # last window: 2 / 1
        [0.5, 2.0]
    """
    return _avg_layer(
        2, kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad
    )
