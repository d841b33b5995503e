"""The three products behind every convolution, for any number of spatial axes and groups.

With ``xp`` the padded input ``(N, C, *Sp)``, ``w`` the weight ``(O, C / G, *K)`` and ``dy`` the
output gradient ``(N, O, *Out)``, a convolution is

    y[n, o, p]   = sum_{c, i} w[o, c, i] xp[n, g(o) C/G + c, p s + i d]
    dw[o, c, i]  = sum_{n, p} dy[n, o, p] xp[n, g(o) C/G + c, p s + i d]
    dxp[n, c, q] = sum_{o, i, p : p s + i d = q} w[o, c, i] dy[n, o, p]

* :func:`correlate` (``y``) copies the strided window view into one im2col matrix laid out
  ``(G, C/G * K, N * Out)`` and does one batched GEMM over the groups. The copy reads the view
  along its last axis, which is contiguous for stride 1.
* :func:`weight_grad` and :func:`input_grad` loop over the ``prod(K)`` kernel offsets (9 for a
  3x3 kernel) and do one GEMM per offset on an input-sized slice. They never build an im2col-sized
  buffer, so the backward pass needs memory proportional to the input and output only.

Channel-major layouts (``(G, C/G, N, ...)``) make every GEMM a plain 2-D matrix product that BLAS
runs multi-threaded, instead of ``N`` small products.
"""

from __future__ import annotations

import numpy as np

from functional_dl.layers._windows import offset_slices, offsets, size, windows
from functional_dl.types import Array

__all__ = ["channels_major", "contiguous_with_bias", "correlate", "input_grad", "weight_grad"]


def channels_major(a: Array, groups: int) -> Array:
    """``(N, C, *S)`` as a contiguous ``(G, C / G, N * prod(S))`` matrix per group."""
    n, c = a.shape[:2]
    spatial = a.shape[2:]
    grouped = a.reshape(n, groups, c // groups, size(spatial))
    return np.ascontiguousarray(grouped.transpose(1, 2, 0, 3)).reshape(groups, c // groups, n * size(spatial))


def contiguous_with_bias(a: Array, bias: Array | None) -> Array:
    """A C-contiguous copy of the ``(N, O, *S)`` view ``a``, plus ``bias[o]`` when given, in one pass.

    A plain ``a + bias`` would keep the memory order of a transposed view (ufuncs allocate in the
    input's order); the next layer wants batch-major memory.
    """
    out = np.empty(a.shape, dtype=a.dtype)
    if bias is None:
        np.copyto(out, a)
    else:
        np.add(a, bias.reshape(-1, *(1,) * (a.ndim - 2)), out=out)
    return out


def correlate(
    xp: Array,
    w: Array,
    *,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    bias: Array | None = None,
) -> Array:
    """``y = w * xp + b``: the forward convolution (cross-correlation) of a padded input.

    Args:
        xp: padded input ``(N, C, *Sp)``.
        w: weight ``(O, C / groups, *K)``.
        stride: per spatial axis.
        dilation: per spatial axis.
        groups: ``C`` and ``O`` are split into this many independent groups.
        bias: ``(O,)`` or ``None``.

    Returns:
        ``(N, O, *Out)``, contiguous.
    """
    n = xp.shape[0]
    o, cg = w.shape[:2]
    kernel = w.shape[2:]
    nd = len(kernel)
    view = windows(xp, kernel, stride, dilation)  # (N, C, *Out, *K)
    out = view.shape[2 : 2 + nd]
    grouped = view.reshape(n, groups, cg, *out, *kernel)
    # (G, C/G, *K, N, *Out): rows of the im2col matrix are (channel, offset), columns (sample, position).
    perm = (1, 2, *range(3 + nd, 3 + 2 * nd), 0, *range(3, 3 + nd))
    col = grouped.transpose(perm).reshape(groups, cg * size(kernel), n * size(out))
    y = w.reshape(groups, o // groups, cg * size(kernel)) @ col
    return contiguous_with_bias(y.reshape(o, n, *out).swapaxes(0, 1), bias)


def weight_grad(
    xp: Array,
    dy_cm: Array,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
) -> Array:
    """``dw`` of shape ``(O, C / G, *K)`` from the padded input and ``dy`` in channel-major form.

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
        tap_index: tuple[slice | int, ...] = (*lead, *offset)
        dw[tap_index] = dy_cm @ taps_cm.swapaxes(1, 2)
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
    """``dxp`` of shape ``(N, C, *padded)``: the gradient with respect to the padded input.

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
    dxp_cm = np.zeros((groups, cg, n, *padded), dtype=dy_cm.dtype)
    lead = (slice(None),) * 3
    for offset in offsets(kernel):
        tap_index: tuple[slice | int, ...] = (*lead, *offset)
        contrib = wg[tap_index].swapaxes(1, 2) @ dy_cm  # (G, C/G, N * prod(out))
        target = dxp_cm[(*lead, *offset_slices(offset, stride, dilation, out))]
        target += contrib.reshape(groups, cg, n, *out)  # our own fresh buffer: in place is safe
    return dxp_cm.reshape(groups * cg, n, *padded).swapaxes(0, 1)
