"""Stride-1 depthwise convolution on channel-major padded planes: every product runs over long rows.

Layout
------
:func:`planes` lays an ``(N, C, *S)`` array out as ``(C, front + N P + back)``: for each channel,
the samples' zero-padded planes of ``P = prod(Sp)`` entries end to end, with ``front`` and ``back``
zeros around them. Flatten a position of a padded plane row-major; then kernel offset ``i`` with
dilation ``d`` is the shift ``off(i) = sum_a i_a d_a st_a`` (``st`` the plane's row-major
strides), and with stride 1 output position ``q`` (flattened the same way, in the same padded
plane) reads input ``q + off(i)``. So over the whole batch

    y[c, j, q]   = sum_i w[c, j, i] xp[c, q + off(i)]              (q over all N P positions)
    dw[c, j, i]  = sum_q dy[c, j, q] xp[c, q + off(i)]              (dy zero outside Out)
    dxp[c, q]    = sum_{i, j} w[c, j, i] dy[c, j, q - off(i)]

with ``c`` the input channel and ``j`` one of its ``m`` outputs. Each term is a product of one
per-row weight with a contiguous run of ``N P`` entries: the longest inner loops NumPy can get,
several times faster than the same products over short strided rows of ``(N, C, H, W)`` arrays.
The wide grid computes every padded position, of which ``prod(Out)`` per plane are kept
(``prod(Sp / Out)`` more work: a few percent for a padded 3x3); a position it does not keep may
read across into the next plane, but a kept one never does, and every ``dy`` it reads outside
``Out`` is one of the zeros around it.

``y`` and ``dxp`` are computed in blocks of columns, so that the two passes per term over a block
stay in cache, and the blocks (and the offsets of ``dw``) are shared out over the library's
threads: each writes its own entries, so the thread count changes no bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from functional_dl import threads
from functional_dl.layers._windows import Pads, offsets, size
from functional_dl.types import Array

__all__ = [
    "BLOCK_BYTES",
    "THREADED_FROM",
    "flat_offsets",
    "planes",
    "planes_weight_grad",
    "shifted_sum",
    "unplanes",
]

#: About this many bytes of each operand per block of columns.
BLOCK_BYTES = 1 << 19
#: Share the work out over threads from this many multiply-adds on.
THREADED_FROM = 1 << 21


def flat_offsets(padded: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...]) -> list[int]:
    """``off(i)`` of every kernel offset (in the order of :func:`offsets`) in a padded plane."""
    strides = [math.prod(padded[a + 1 :]) for a in range(len(padded))]
    return [
        sum(i * d * st for i, d, st in zip(offset, dilation, strides, strict=True))
        for offset in offsets(kernel)
    ]


def planes(a: Array, pads: Pads, *, front: int = 0, back: int = 0) -> Array:
    """``a`` ``(N, C, *S)`` as channel-major padded planes ``(C, front + N P + back)`` (zeros around)."""
    n, c, spatial = a.shape[0], a.shape[1], a.shape[2:]
    padded = tuple(k + lo + hi for k, (lo, hi) in zip(spatial, pads, strict=True))
    out = np.empty((c, front + n * size(padded) + back), a.dtype)
    interior = tuple(slice(lo, lo + k) for k, (lo, _) in zip(spatial, pads, strict=True))
    target = out[:, front : front + n * size(padded)].reshape(c, n, *padded)
    _by_rows(partial(_fill_planes, out, target, interior, a.swapaxes(0, 1)), c, out.size)
    return out


def _fill_planes(out: Array, target: Array, interior: tuple[slice, ...], source: Array, rows: slice) -> None:
    out[rows] = 0
    target[(rows, slice(None), *interior)] = source[rows]


def unplanes(
    wide: Array, n: int, padded: tuple[int, ...], keep: tuple[slice, ...], bias: Array | None = None
) -> Array:
    """The ``keep`` part of each plane of ``wide`` ``(R, N P)``, plus ``bias``: ``(N, R, *kept)``."""
    rows = wide.shape[0]
    view = wide.reshape(rows, n, *padded)[(slice(None), slice(None), *keep)].swapaxes(0, 1)
    out = np.empty(view.shape, wide.dtype)
    per_row = None if bias is None else bias.reshape(1, rows, *(1,) * len(padded))
    _by_rows(partial(_copy_rows, out, view, per_row), rows, out.size)
    return out


def _copy_rows(out: Array, view: Array, bias: Array | None, rows: slice) -> None:
    if bias is None:
        np.copyto(out[:, rows], view[:, rows])
    else:
        np.add(view[:, rows], bias[:, rows], out=out[:, rows])


def _by_rows(fn: Callable[[slice], None], rows: int, work: int) -> None:
    """``fn(rows)`` over ``[0, rows)``, split into as many consecutive ranges as there are threads."""
    n = 1 if work < THREADED_FROM else min(rows, threads.num_threads())
    threads.parallel_map(fn, [slice(k * rows // n, (k + 1) * rows // n) for k in range(n)], n)


def _columns(rows: int, length: int, itemsize: int) -> list[tuple[int, int]]:
    step = max(256, BLOCK_BYTES // max(1, rows * itemsize))
    return [(a, min(a + step, length)) for a in range(0, length, step)]


def shifted_sum(src: Array, weights: Array, starts: list[int], length: int) -> Array:
    """``out[c, :, q] = sum_i weights[i, c] (x) src[c, :, starts[i] + q]`` for ``q < length``.

    ``src`` is ``(C, m_in, L)`` and ``weights`` ``(K, C, m)``. With ``m_in = 1`` each input row
    spreads over ``m`` output rows (``out`` is ``(C, m, length)``: the forward pass); with
    ``m_in = m`` the ``m`` rows are summed into one (``out`` is ``(C, 1, length)``: the input
    gradient). Block by block of columns, shared out over the threads.
    """
    c, m_in = src.shape[:2]
    m_out = weights.shape[2] if m_in == 1 else 1
    out = np.empty((c, m_out, length), np.result_type(src, weights))
    blocks = _columns(c * max(m_in, m_out), length, out.itemsize)
    work = len(starts) * c * max(m_in, m_out) * length
    n = 1 if work < THREADED_FROM else threads.num_threads()
    dealt = [blocks[k::n] for k in range(min(n, len(blocks)))]
    threads.parallel_map(partial(_shifted_blocks, out, src, weights, starts), dealt, n)
    return out


def _shifted_blocks(
    out: Array, src: Array, weights: Array, starts: list[int], blocks: list[tuple[int, int]]
) -> None:
    spread = src.shape[1] == 1
    tmp = np.empty((*out.shape[:2], blocks[0][1] - blocks[0][0]) if blocks else (0,), out.dtype)
    for a, z in blocks:
        into, scratch = out[..., a:z], tmp[..., : z - a]
        for k, start in enumerate(starts):
            part = src[..., start + a : start + z]
            target = into if k == 0 else scratch
            if spread:
                np.multiply(part, weights[k][..., None], out=target)
            else:
                np.einsum("cjq,cj->cq", part, weights[k], out=target[:, 0])
            if k:
                into += scratch


def planes_weight_grad(dy: Array, xp: Array, starts: list[int]) -> Array:
    """``dw[c, j, i] = sum_q dy[c, j, q] xp[c, starts[i] + q]``: ``(C, m, K)``.

    ``dy`` is ``(C, m, L)`` and ``xp`` ``(C, >= starts[-1] + L)``; one ``einsum`` per offset over
    contiguous rows, the offsets shared out over the threads.
    """
    c, m = dy.shape[:2]
    dw = np.empty((c, m, len(starts)), np.result_type(dy, xp))
    n = 1 if len(starts) * dy.size < THREADED_FROM else threads.num_threads()
    ks = list(range(len(starts)))
    threads.parallel_map(
        partial(_weight_grads, dw, dy, xp, starts), [ks[k::n] for k in range(min(n, len(ks)))], n
    )
    return dw


def _weight_grads(dw: Array, dy: Array, xp: Array, starts: list[int], ks: list[int]) -> None:
    length = dy.shape[2]
    for k in ks:
        np.einsum("cjq,cq->cj", dy, xp[:, starts[k] : starts[k] + length], out=dw[..., k])
