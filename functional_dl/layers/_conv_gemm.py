"""The three products behind every convolution, for any number of spatial axes and groups.

With ``xp`` the padded input ``(N, C, *Sp)``, ``w`` the weight ``(O, C / G, *K)`` and ``dy`` the
output gradient ``(N, O, *Out)``, a convolution is

    y[n, o, p]   = sum_{c, i} w[o, c, i] xp[n, g(o) C/G + c, p s + i d]
    dw[o, c, i]  = sum_{n, p} dy[n, o, p] xp[n, g(o) C/G + c, p s + i d]
    dxp[n, c, q] = sum_{o, i, p : p s + i d = q} w[o, c, i] dy[n, o, p]

* :func:`im2col` copies the strided window view into one matrix ``col`` laid out
  ``(G, C/G * K, N * Out)`` (rows: channel and kernel offset; columns: sample and position). The
  copy reads the view along its last axis, which is contiguous for stride 1.
* :func:`correlate` (``y``) is one batched GEMM over the groups, ``w @ col``
  (:func:`correlate_channels_major`), or, for a shallow product, one GEMM per sample written
  straight into the batch-major ``y`` (:func:`correlate_per_sample`).
* :func:`weight_grad` (``dw``) is one GEMM, ``dy @ col^T``; a layer that kept ``col`` from its
  forward pass passes it to :func:`col_weight_grad` and skips the copy.
* :func:`input_grad` (``dxp``) is one GEMM, ``dcol = w^T @ dy``, followed by :func:`col2im`: one
  strided-slice addition per kernel offset sums the overlapping windows back into the input.
  :func:`input_grad_cropped` gives the same sums with the padding already cut off: each offset's
  slice is clipped to the unpadded input and added straight into a batch-major ``dx``, which
  saves the padded buffer and the copy that crops it; an offset whose slice covers all of ``dx``
  (stride 1, padding within the kernel's reach) is copied in first instead of zero-filling. It
  runs a few samples at a time, so that each chunk of ``dcol`` is summed while still in cache.

Few large GEMMs are what BLAS runs fastest, at the price of one im2col-sized buffer (``prod(K)``
times the input) in each of these (:func:`input_grad_cropped` needs only a chunk of one). The per-
offset forms :func:`weight_grad_per_offset` and :func:`input_grad_per_offset` write the formulas
above one kernel offset at a time with input-sized buffers only; they are the reference the tests
compare the fast forms with.

Channel-major layouts (``(G, C/G, N, ...)``) make every GEMM a plain 2-D matrix product that BLAS
runs multi-threaded, instead of ``N`` small products.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from functional_dl import _recycle as recycle
from functional_dl.layers._windows import Pads, clip_offset, offset_slices, offsets, out_sizes, size, windows
from functional_dl.types import Array

__all__ = [
    "DCOL_CHUNK_BYTES",
    "SHALLOW_DEPTH",
    "channels_major",
    "col2im",
    "col_weight_grad",
    "contiguous_with_bias",
    "correlate",
    "correlate_channels_major",
    "correlate_per_sample",
    "im2col",
    "input_grad",
    "input_grad_cropped",
    "input_grad_per_offset",
    "samples_per_chunk",
    "weight_grad",
    "weight_grad_per_offset",
]


def channels_major(a: Array, groups: int) -> Array:
    """``(N, C, *S)`` as a contiguous ``(G, C / G, N * prod(S))`` matrix per group."""
    n, c = a.shape[:2]
    spatial = a.shape[2:]
    grouped = a.reshape(n, groups, c // groups, size(spatial))
    out = recycle.empty((groups, c // groups, n, size(spatial)), a.dtype)
    np.copyto(out, grouped.transpose(1, 2, 0, 3))
    return out.reshape(groups, c // groups, n * size(spatial))


def contiguous_with_bias(a: Array, bias: Array | None) -> Array:
    """A C-contiguous copy of the ``(N, O, *S)`` view ``a``, plus ``bias[o]`` when given, in one pass.

    A plain ``a + bias`` would keep the memory order of a transposed view (ufuncs allocate in the
    input's order); the next layer wants batch-major memory.
    """
    out = recycle.empty(a.shape, a.dtype)
    if bias is None:
        np.copyto(out, a)
    else:
        np.add(a, bias.reshape(-1, *(1,) * (a.ndim - 2)), out=out)
    return out


def im2col(
    xp: Array, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], groups: int
) -> Array:
    """Every window of ``xp`` ``(N, C, *Sp)`` as one contiguous ``(G, C/G * prod(K), N * prod(Out))`` matrix.

    ``col[g, c * prod(K) + i, n * prod(Out) + p] == xp[n, g C/G + c, p s + i d]`` (``i`` and ``p``
    flattened row-major).
    """
    n, c = xp.shape[:2]
    nd = len(kernel)
    view = windows(xp, kernel, stride, dilation)  # (N, C, *Out, *K)
    out = view.shape[2 : 2 + nd]
    grouped = view.reshape(n, groups, c // groups, *out, *kernel)
    perm = (1, 2, *range(3 + nd, 3 + 2 * nd), 0, *range(3, 3 + nd))  # (G, C/G, *K, N, *Out)
    col = recycle.empty((groups, c // groups, *kernel, n, *out), xp.dtype)
    np.copyto(col, grouped.transpose(perm))
    return col.reshape(groups, c // groups * size(kernel), n * size(out))


def correlate(
    xp: Array,
    w: Array,
    *,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    bias: Array | None = None,
    col: Array | None = None,
) -> Array:
    """``y = w * xp + b``: the forward convolution (cross-correlation) of a padded input.

    Args:
        xp: padded input ``(N, C, *Sp)``.
        w: weight ``(O, C / groups, *K)``.
        stride: per spatial axis.
        dilation: per spatial axis.
        groups: ``C`` and ``O`` are split into this many independent groups.
        bias: ``(O,)`` or ``None``.
        col: ``im2col(xp, ...)`` if the caller already has it (it is built otherwise).

    Returns:
        ``(N, O, *Out)``, contiguous.
    """
    n = xp.shape[0]
    o, cg = w.shape[:2]
    kernel = w.shape[2:]
    out = out_sizes(xp.shape[2:], kernel, stride, dilation)
    if col is None:
        col = im2col(xp, kernel, stride, dilation, groups)
    wg = w.reshape(groups, o // groups, cg * size(kernel))
    if cg * size(kernel) <= SHALLOW_DEPTH:
        y = correlate_per_sample(wg, col, n).reshape(n, o, *out)
        if bias is not None:
            y += bias.reshape(-1, *(1,) * len(out))  # our own fresh buffer: in place is safe
        return y
    return contiguous_with_bias(correlate_channels_major(wg, col).reshape(o, n, *out).swapaxes(0, 1), bias)


#: Up to this GEMM depth ``C/G * prod(K)`` :func:`correlate` multiplies sample by sample.
SHALLOW_DEPTH = 64


def correlate_channels_major(wg: Array, col: Array) -> Array:
    """``w @ col`` as one GEMM per group: ``(G, O/G, D) @ (G, D, N * P)`` gives ``(G, O/G, N * P)``."""
    out = recycle.empty((*wg.shape[:2], col.shape[2]), np.result_type(wg, col))
    return np.matmul(wg, col, out=out)


def correlate_per_sample(wg: Array, col: Array, n: int) -> Array:
    """``w @ col`` one sample at a time, written batch-major: ``(N, O, P)``, contiguous.

    The same sums as :func:`correlate_channels_major` in the layout the next layer reads. A shallow
    product (small ``D``) is bound by writing ``y``; writing it once, in place, beats one large GEMM
    followed by a transposing copy (about twice as fast for a first layer). A deep one runs faster
    as one large GEMM.
    """
    groups, og, depth = wg.shape
    positions = col.shape[2] // max(n, 1)  # P; an empty batch has no columns at all
    per_sample = col.reshape(groups, depth, n, positions).transpose(2, 0, 1, 3)  # (N, G, D, P), a view
    # An explicit buffer: matmul would otherwise lay y out in the memory order of the view.
    y = recycle.empty((n, groups, og, positions), np.result_type(wg, col))
    np.matmul(wg, per_sample, out=y)
    return y.reshape(n, groups * og, positions)


def col_weight_grad(col: Array, dy_cm: Array, kernel: tuple[int, ...]) -> Array:
    """``dw = dy @ col^T``, ``(O, C / G, *K)``, from :func:`im2col` and a :func:`channels_major` ``dy``."""
    groups, og = dy_cm.shape[:2]
    # dw^T = col @ dy^T: with the long N * prod(Out) axis contracted this way round, OpenBLAS runs
    # several times faster (and steadier) than dy @ col^T, which lands on a different kernel.
    dw = (col @ dy_cm.swapaxes(1, 2)).swapaxes(1, 2)  # (G, O/G, C/G * prod(K))
    return dw.reshape(groups * og, col.shape[1] // size(kernel), *kernel)


def weight_grad(
    xp: Array,
    dy_cm: Array,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> Array:
    """``dw`` of shape ``(O, C / G, *K)`` as one GEMM on the im2col matrix of ``xp``.

    Args as :func:`weight_grad_per_offset`, which gives the same result.
    """
    del out  # implied by xp's shape; kept so the two forms are interchangeable
    return col_weight_grad(im2col(xp, kernel, stride, dilation, dy_cm.shape[0]), dy_cm, kernel)


def weight_grad_per_offset(
    xp: Array,
    dy_cm: Array,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> Array:
    """``dw`` of shape ``(O, C / G, *K)``, one GEMM per kernel offset (the reference form).

    Args:
        xp: padded input ``(N, C, *Sp)``.
        dy_cm: output gradient as :func:`channels_major` gives it, ``(G, O / G, N * prod(out))``.
        kernel: kernel size.
        stride: per spatial axis.
        dilation: per spatial axis.
        out: spatial output size of ``dy``.
    """
    groups, og = dy_cm.shape[:2]
    n, c = xp.shape[:2]
    cg = c // groups
    xg = xp.reshape(n, groups, cg, *xp.shape[2:])
    dw = np.empty((groups, og, cg, *kernel), dtype=dy_cm.dtype)
    lead = (slice(None),) * 3
    perm = (1, 2, 0, *range(3, 3 + len(kernel)))  # (N, G, C/G, *out) -> (G, C/G, N, *out)
    for offset in offsets(kernel):
        taps = xg[(*lead, *offset_slices(offset, stride, dilation, out))]  # (N, G, C/G, *out)
        # One input-sized copy per offset; (G, C/G, N, *out) keeps the contiguous axis last.
        taps_cm = np.ascontiguousarray(taps.transpose(perm)).reshape(groups, cg, n * size(out))
        dw[_tap(3, offset)] = dy_cm @ taps_cm.swapaxes(1, 2)
    return dw.reshape(groups * og, cg, *kernel)


def input_grad(
    dy_cm: Array,
    w: Array,
    *,
    n: int,
    padded: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> Array:
    """``dxp`` of shape ``(N, C, *padded)``: ``col2im(w^T @ dy)``, one GEMM.

    Args as :func:`input_grad_per_offset`, which gives the same result.
    """
    return col2im(_dcol(dy_cm, w, n, out), padded, stride, dilation)


def _dcol(dy_cm: Array, w: Array, n: int, out: tuple[int, ...]) -> Array:
    """``dcol = w^T @ dy``, one GEMM, as ``(G, C/G, *K, N, *out)`` (the layout :func:`col2im` reads)."""
    groups, og = dy_cm.shape[:2]
    cg = w.shape[1]
    kernel = w.shape[2:]
    into = recycle.empty((groups, cg * size(kernel), dy_cm.shape[2]), np.result_type(w, dy_cm))
    dcol = np.matmul(w.reshape(groups, og, cg * size(kernel)).swapaxes(1, 2), dy_cm, out=into)
    return dcol.reshape(groups, cg, *kernel, n, *out)


def col2im(dcol: Array, padded: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]) -> Array:
    """The adjoint of :func:`im2col`: ``(G, C/G, *K, N, *Out)`` summed back into ``(N, C, *padded)``.

    ``dxp[n, g C/G + c, q] = sum_{i, p : p s + i d = q} dcol[g, c, i, n, p]``: one strided-slice
    addition per kernel offset, each over a whole ``(G, C/G, N, *Out)`` block.
    """
    nd = len(padded)
    kernel = dcol.shape[2 : 2 + nd]
    parts = ((offset, dcol[_tap(2, offset)]) for offset in offsets(kernel))
    return _sum_at_offsets(parts, (*dcol.shape[:2], dcol.shape[2 + nd], *padded), stride, dilation)


#: :func:`input_grad_cropped` makes ``dcol`` for as many samples at a time as fit in this many bytes.
DCOL_CHUNK_BYTES = 1 << 22


def samples_per_chunk(n: int, bytes_per_sample: int) -> int:
    """How many of ``n`` samples :func:`input_grad_cropped` takes per GEMM (at least 1)."""
    return max(1, min(n, DCOL_CHUNK_BYTES // max(bytes_per_sample, 1)))


def input_grad_cropped(
    dy_cm: Array,
    w: Array,
    *,
    n: int,
    spatial: tuple[int, ...],
    pads: Pads,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
    chunk: int | None = None,
) -> Array:
    """``dx`` of shape ``(N, C, *spatial)``, contiguous: :func:`input_grad` with ``pads`` cropped off.

    Args as :func:`input_grad_per_offset`, with the unpadded ``spatial`` size and the ``(before,
    after)`` ``pads`` per axis in place of ``padded``, and ``chunk``: how many samples each GEMM
    covers (by default :func:`samples_per_chunk`, about :data:`DCOL_CHUNK_BYTES` of ``dcol``).

    Samples do not mix in ``dx``, so ``dcol`` is made and summed ``chunk`` samples at a time: each
    chunk's ``dcol`` is still in cache when the strided additions read it back, instead of an
    im2col-sized buffer streamed through memory (measured on 64x32x28x28, 3x3: a fifth less time
    for the GEMM and the sums, and a 4 MiB buffer instead of a 58 MB one). The additions into
    each entry of ``dx`` run in the same order whatever ``chunk`` is.
    """
    groups, cg = dy_cm.shape[0], w.shape[1]
    kernel = w.shape[2:]
    positions = size(out)
    dtype = np.result_type(w, dy_cm)
    if chunk is None:
        chunk = samples_per_chunk(n, groups * cg * size(kernel) * positions * dtype.itemsize)
    clipped = [
        (clip_offset(offset, pads=pads, stride=stride, dilation=dilation, out=out, spatial=spatial), offset)
        for offset in offsets(kernel)
    ]
    dx = recycle.empty((n, groups * cg, *spatial), dtype)
    dx_cm = dx.reshape(n, groups, cg, *spatial).transpose(1, 2, 0, *range(3, 3 + len(spatial)))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dcol = _dcol(dy_cm[:, :, start * positions : stop * positions], w, stop - start, out)
        _sum_cropped(dcol, dx_cm[:, :, start:stop], clipped, spatial)
    return dx


def _sum_cropped(
    dcol: Array,
    dx_cm: Array,
    clipped: list[tuple[tuple[tuple[slice, ...], tuple[slice, ...]], tuple[int, ...]]],
    spatial: tuple[int, ...],
) -> None:
    """Sum ``dcol`` ``(G, C/G, *K, n, *Out)`` into the ``(G, C/G, n, *spatial)`` view ``dx_cm``.

    ``clipped`` holds each kernel offset's ``((target, source), offset)`` from ``clip_offset``. An
    offset whose slice covers all of ``dx_cm`` (stride 1, padding within the kernel's reach) is
    copied in first instead of zero-filling.
    """
    lead = (slice(None),) * 3
    parts = [
        (target, dcol[(*_tap(2, offset), slice(None), *source)])
        for (target, source), offset in clipped
        if target
    ]
    full = next((i for i, (_, part) in enumerate(parts) if part.shape[3:] == spatial), None)
    if full is None:
        dx_cm.fill(0)
    else:
        np.copyto(dx_cm, parts.pop(full)[1])
    for target, part in parts:
        view = dx_cm[(*lead, *target)]
        view += part  # our own fresh buffer: in place is safe


def _tap(lead: int, offset: tuple[int, ...]) -> tuple[slice | int, ...]:
    """The index selecting kernel ``offset`` after ``lead`` whole axes."""
    return (*(slice(None),) * lead, *offset)


def _sum_at_offsets(
    parts: Iterable[tuple[tuple[int, ...], Array]],
    shape_cm: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Array:
    """``(N, C, *padded)`` from ``(offset, (G, C/G, N, *out))`` parts, each summed into its strided slice.

    ``shape_cm`` is ``(G, C/G, N, *padded)``; positions that no window reaches stay zero.
    """
    groups, cg, n = shape_cm[:3]
    dxp_cm: Array | None = None
    lead = (slice(None),) * 3
    for offset, part in parts:
        if dxp_cm is None:
            dxp_cm = np.zeros(shape_cm, dtype=part.dtype)
        target = dxp_cm[(*lead, *offset_slices(offset, stride, dilation, part.shape[3:]))]
        target += part  # our own fresh buffer: in place is safe
    assert dxp_cm is not None  # a kernel has at least one offset
    return dxp_cm.reshape(groups * cg, n, *shape_cm[3:]).swapaxes(0, 1)


def input_grad_per_offset(
    dy_cm: Array,
    w: Array,
    *,
    n: int,
    padded: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> Array:
    """``dxp`` of shape ``(N, C, *padded)``, one GEMM per kernel offset (the reference form).

    Args:
        dy_cm: output gradient in channel-major form ``(G, O / G, N * prod(out))``.
        w: weight ``(O, C / G, *K)``.
        n: batch size.
        padded: spatial size of the padded input.
        stride: per spatial axis.
        dilation: per spatial axis.
        out: spatial output size of ``dy``.

    Positions that no window reaches (the remainder when ``(n - extent) % s != 0``) get zero.
    """
    groups, og = dy_cm.shape[:2]
    cg = w.shape[1]
    kernel = w.shape[2:]
    wg = w.reshape(groups, og, cg, *kernel)
    parts = (
        (offset, (wg[_tap(3, offset)].swapaxes(1, 2) @ dy_cm).reshape(groups, cg, n, *out))
        for offset in offsets(kernel)
    )
    return _sum_at_offsets(parts, (groups, cg, n, *padded), stride, dilation)
