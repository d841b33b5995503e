"""Depthwise convolution as one multiply-add of whole arrays per kernel offset.

When every group holds one input channel (``groups = C``, so ``C / G = 1`` and ``O = m C``), output
channel ``o = c m + j`` reads input channel ``c`` alone. With ``xp`` the padded input ``(N, C, *Sp)``,
``w`` the weight viewed as ``(C, m, *K)`` and ``dy`` the output gradient viewed as
``(N, C, m, *Out)``, the formulas of :mod:`functional_dl.layers._conv_gemm` become

    y[n, c, j, p]  = b[c, j] + sum_i w[c, j, i] xp[n, c, p s + i d]
    dw[c, j, i]    = sum_{n, p} dy[n, c, j, p] xp[n, c, p s + i d]
    dxp[n, c, q]   = sum_{j, i, p : p s + i d = q} w[c, j, i] dy[n, c, j, p]

As GEMMs these are ``G`` products of depth ``prod(K)`` (9 for a 3x3 kernel): matrix-vector
products that BLAS runs at a fraction of its speed, on an im2col copy ``prod(K)`` times the size
of the input. Per kernel offset ``i`` instead, each formula is a product of whole arrays: the
slice of ``xp`` that offset ``i`` reads (its *taps*) times a per-channel weight, summed over the
offsets for ``y`` and ``dxp``, and summed over samples and positions for ``dw``
(``numpy.einsum``, which needs no temporary).

:func:`depthwise_forward` and :func:`depthwise_backward` are what the layer calls. With stride 1
they work on channel-major padded planes, where every tap is one contiguous run
(:mod:`functional_dl.layers._depthwise_planes`); with other strides the taps are strided views of
the batch-major padded input (:func:`depthwise_correlate`, :func:`depthwise_weight_grad`,
:func:`depthwise_input_grad`), run over blocks of a few samples (:func:`sample_blocks`) so that
the two passes per offset over a block stay in cache. The GEMM forms of
:mod:`functional_dl.layers._conv_gemm` are the reference the tests compare both with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from functional_dl.layers._depthwise_planes import (
    flat_offsets,
    planes,
    planes_weight_grad,
    shifted_sum,
    unplanes,
)
from functional_dl.layers._windows import Pads, clip_offset, offset_slices, offsets, out_sizes, pad, size
from functional_dl.types import Array

__all__ = [
    "BLOCK_BYTES",
    "MAX_MULTIPLIER",
    "depthwise_backward",
    "depthwise_correlate",
    "depthwise_forward",
    "depthwise_input_grad",
    "depthwise_weight_grad",
    "is_depthwise",
    "sample_blocks",
]

#: About this many bytes of input and output per block of samples: a block's passes fit in L2.
BLOCK_BYTES = 1 << 19

#: Up to this many outputs per input channel (``m = O / C``) the per-offset form beats the GEMMs.
MAX_MULTIPLIER = 4


def is_depthwise(w_shape: tuple[int, ...], groups: int) -> bool:
    """Whether a convolution with weight ``(O, C / groups, *K)`` takes the depthwise path here.

    Every group must hold one input channel; with more than :data:`MAX_MULTIPLIER` outputs per
    channel (a first layer over one channel, say) one GEMM of ``O`` rows is faster.
    """
    return w_shape[1] == 1 and w_shape[0] // groups <= MAX_MULTIPLIER


def sample_blocks(n: int, bytes_per_sample: int) -> list[slice]:
    """``[0, n)`` cut into consecutive slices of about :data:`BLOCK_BYTES` each (at least one sample)."""
    step = max(1, BLOCK_BYTES // max(1, bytes_per_sample))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _at(lead: int, index: Sequence[slice] | Sequence[int]) -> tuple[slice | int, ...]:
    """``index`` applied after ``lead`` whole axes."""
    return (*(slice(None),) * lead, *index)


def depthwise_forward(
    x: Array,
    w: Array,
    bias: Array | None,
    *,
    pads: Pads,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[Array, Array]:
    """``(y, taps)``: ``y`` ``(N, m C, *Out)``, contiguous, and what :func:`depthwise_backward` reads.

    ``x`` is the unpadded input ``(N, C, *S)`` and ``w`` ``(m C, 1, *K)``. ``taps`` is the padded
    input: channel-major planes ``(C, N P + tail)`` with stride 1, else ``(N, C, *Sp)``.
    """
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    kernel = w.shape[2:]
    padded = tuple(k + lo + hi for k, (lo, hi) in zip(spatial, pads, strict=True))
    out = out_sizes(padded, kernel, stride, dilation)
    if any(s != 1 for s in stride):
        xp = pad(x, pads)
        return depthwise_correlate(xp, w, stride=stride, dilation=dilation, out=out, bias=bias), xp
    starts = flat_offsets(padded, kernel, dilation)
    xp = planes(x, pads, back=starts[-1])
    weights = np.moveaxis(w.reshape(c, -1, size(kernel)), -1, 0)  # (K, C, m)
    wide = shifted_sum(xp[:, None], weights, starts, n * size(padded))  # (C, m, N P)
    keep = tuple(slice(0, o) for o in out)
    return unplanes(wide.reshape(w.shape[0], -1), n, padded, keep, bias), xp


def depthwise_backward(
    taps: Array,
    dy: Array,
    w: Array,
    *,
    spatial: tuple[int, ...],
    pads: Pads,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    input_grad: bool = True,
) -> tuple[Array | None, Array]:
    """``(dx, dw)`` from the ``taps`` of :func:`depthwise_forward`; ``dy`` is ``(N, m C, *Out)``.

    ``dx`` is ``(N, C, *spatial)``, contiguous (``None`` unless ``input_grad``), ``dw`` is
    ``(m C, 1, *K)``.
    """
    n, o = dy.shape[:2]
    kernel = w.shape[2:]
    if any(s != 1 for s in stride):
        dw = depthwise_weight_grad(taps, dy, kernel=kernel, stride=stride, dilation=dilation)
        if not input_grad:
            return None, dw
        dx = depthwise_input_grad(
            dy, w, channels=taps.shape[1], spatial=spatial, pads=pads, stride=stride, dilation=dilation
        )
        return dx, dw
    c = taps.shape[0]
    m, out = o // c, dy.shape[2:]
    padded = tuple(k + lo + hi for k, (lo, hi) in zip(spatial, pads, strict=True))
    starts = flat_offsets(padded, kernel, dilation)
    front = starts[-1]
    # dy at the corner of each padded plane, zeros around: read by dw, and shifted back by dx.
    dyp = planes(dy, tuple((0, p - e) for p, e in zip(padded, out, strict=True)), front=front)
    rows = dyp.reshape(c, m, -1)
    dw = planes_weight_grad(rows[..., front:], taps, starts).reshape(o, 1, *kernel)
    if not input_grad:
        return None, dw
    weights = np.moveaxis(w.reshape(c, m, size(kernel)), -1, 0)  # (K, C, m)
    wide = shifted_sum(rows, weights, [front - a for a in starts], n * size(padded))  # (C, 1, N P)
    keep = tuple(slice(lo, lo + k) for k, (lo, _) in zip(spatial, pads, strict=True))
    return unplanes(wide.reshape(c, -1), n, padded, keep), dw


def depthwise_correlate(
    xp: Array,
    w: Array,
    *,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
    bias: Array | None = None,
) -> Array:
    """``y = w * xp + b`` for a depthwise weight, over strided taps (any stride).

    ``xp`` is the padded input ``(N, C, *Sp)`` and ``w`` ``(m C, 1, *K)``.

    Returns ``(N, m C, *out)``, contiguous: the forward pass of
    :func:`~functional_dl.layers._conv_gemm.correlate` with ``groups = C``, for any stride.
    """
    n, c = xp.shape[:2]
    kernel = w.shape[2:]
    m = w.shape[0] // c
    taps = [
        xp[:, :, None][_at(3, offset_slices(offset, stride, dilation, out))] for offset in offsets(kernel)
    ]
    weights = list(np.moveaxis(w.reshape(c, m, -1), -1, 0)[..., *(None,) * len(out)])  # (C, m, 1, ...)
    y = np.empty((n, c, m, *out), np.result_type(xp, w))
    bytes_per_sample = (size(xp.shape[1:]) + 2 * size(y.shape[1:])) * y.itemsize
    for block in sample_blocks(n, bytes_per_sample):
        _sum_of_products(y[block], [tap[block] for tap in taps], weights)
    if bias is not None:
        y += bias.reshape(c, m, *(1,) * len(out))  # our own fresh buffer: in place is safe
    return y.reshape(n, m * c, *out)


def _sum_of_products(into: Array, taps: list[Array], weights: list[Array]) -> None:
    """``into = sum_i taps[i] * weights[i]``, two passes per term over the block (in cache)."""
    tmp = np.empty_like(into)
    np.multiply(taps[0], weights[0], out=into)
    for tap, weight in zip(taps[1:], weights[1:], strict=True):
        np.multiply(tap, weight, out=tmp)
        into += tmp


def depthwise_weight_grad(
    xp: Array,
    dy: Array,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Array:
    """``dw`` of shape ``(m C, 1, *K)`` for a depthwise convolution; ``dy`` is ``(N, m C, *out)``.

    One ``einsum`` per kernel offset over its strided taps: no buffer of the input's size at all.
    """
    n, c = xp.shape[:2]
    o, out = dy.shape[1], dy.shape[2:]
    axes = "pqr"[: len(out)]
    dyc = dy.reshape(n, c, o // c, *out)
    dw = np.empty((c, o // c, size(kernel)), dtype=np.result_type(xp, dy))
    for k, offset in enumerate(offsets(kernel)):
        taps = xp[_at(2, offset_slices(offset, stride, dilation, out))]
        np.einsum(f"ncj{axes},nc{axes}->cj", dyc, taps, out=dw[..., k])
    return dw.reshape(o, 1, *kernel)


def depthwise_input_grad(
    dy: Array,
    w: Array,
    *,
    channels: int,
    spatial: tuple[int, ...],
    pads: Pads,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Array:
    """``dx`` of shape ``(N, C, *spatial)``, contiguous, with the padding cropped off, for any stride.

    ``dy`` is ``(N, m C, *out)``, ``w`` ``(m C, 1, *K)`` and ``channels`` is ``C``. Each kernel
    offset adds ``w_i dy`` (summed over the ``m`` outputs of a channel) into the part of ``dx``
    that its windows reach (:func:`clip_offset`), which saves a padded buffer and a cropping copy.
    """
    n, o, out = dy.shape[0], dy.shape[1], dy.shape[2:]
    kernel, m = w.shape[2:], o // channels
    dtype = np.result_type(dy, w)
    weights = list(np.moveaxis(w.reshape(channels, m, -1), -1, 0))  # per offset: (C, m)
    dyc = dy.reshape(n, channels, m, *out)
    clipped = []
    for offset, weight in zip(offsets(kernel), weights, strict=True):
        target, source = clip_offset(
            offset, pads=pads, stride=stride, dilation=dilation, out=out, spatial=spatial
        )
        if target:
            clipped.append((target, dyc[_at(3, source)], weight))
    dx = np.empty((n, channels, *spatial), dtype)
    full = next((i for i, (target, _, _) in enumerate(clipped) if _covers(target, spatial)), None)
    if full is not None:  # an offset whose windows reach all of dx goes first and writes it
        clipped.insert(0, clipped.pop(full))
    bytes_per_sample = 2 * (size(dx.shape[1:]) + size(dyc.shape[1:])) * dx.itemsize
    for block in sample_blocks(n, bytes_per_sample):
        _add_products(
            dx[block], [(t, src[block], wt) for t, src, wt in clipped], 0 if full is not None else None
        )
    return dx


def _add_products(
    into: Array, parts: list[tuple[tuple[slice, ...], Array, Array]], first: int | None
) -> None:
    """``into[target] += sum_j dy[:, :, j] * w[:, j]`` for each ``(target, dy, w)`` of ``parts``.

    ``first``: the index of a part whose target is all of ``into``, which is then written rather
    than added to (``into`` is not read); otherwise ``into`` is zero-filled first.
    """
    if first is None:
        into.fill(0)
    for i, (target, dy, weight) in enumerate(parts):
        axes = "pqr"[: dy.ndim - 3]
        product = np.einsum(f"ncj{axes},cj->nc{axes}", dy, weight)
        if i == first:
            np.copyto(into, product)
        else:
            into[_at(2, target)] += product


def _covers(target: tuple[slice, ...], spatial: tuple[int, ...]) -> bool:
    """Whether the strided ``target`` slices reach every position of ``spatial``."""
    return all(len(range(k)[t]) == k for t, k in zip(target, spatial, strict=True))
