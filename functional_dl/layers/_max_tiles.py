"""Max pooling over non-overlapping windows: the fast path of :mod:`functional_dl.layers.pool`.

When the stride equals the kernel and there is no padding and no dilation (``max_pool2d(2)``, the
common case), the windows tile the input. The input, cropped to whole tiles, then *reshapes*
without a copy to ``(N, C, o_1, k_1, o_2, k_2, ...)``, and kernel offset ``i`` of every window is
the view ``tiles[:, :, :, i_1, :, i_2, ...]``: the same taps as the general path's strided slices,
but the backward pass writes each offset's gradient into its own disjoint view of ``dx`` instead
of accumulating into a padded buffer.

The maximum is a chain of ``np.maximum`` over the taps (cheap elementwise calls: NumPy's
reductions over short, strided window axes are several times slower). The chosen tap is the
first tap equal to the maximum, row-major, which is PyTorch's rule for ties. A NaN breaks the
equality test; PyTorch lets the *last* NaN of a window win, so :func:`max_and_argmax` declines
(returns ``None``) when the maximum holds a NaN, and the caller takes the general path.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl.layers._windows import Pads, offsets
from functional_dl.types import Array

__all__ = ["applies", "max_and_argmax", "scatter"]


def applies(kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], pads: Pads) -> bool:
    """Whether the windows tile the input: stride == kernel, dilation 1 and no padding (nor overhang)."""
    return stride == kernel and all(d == 1 for d in dilation) and not any(lo or hi for lo, hi in pads)


def _taps(a: Array, kernel: tuple[int, ...], out: tuple[int, ...]) -> list[Array]:
    """Views ``(N, C, *out)`` of ``a`` ``(N, C, *S)``, one per kernel offset in row-major order."""
    cropped = a[(slice(None), slice(None), *(slice(0, o * k) for o, k in zip(out, kernel, strict=True)))]
    # Splitting an axis never needs a copy, even of the cropped (non-contiguous) view.
    tiles = cropped.reshape(*a.shape[:2], *(n for pair in zip(out, kernel, strict=True) for n in pair))
    lead = (slice(None), slice(None))
    return [tiles[(*lead, *(j for i in offset for j in (slice(None), i)))] for offset in offsets(kernel)]


def max_and_argmax(
    x: Array, kernel: tuple[int, ...], out: tuple[int, ...]
) -> tuple[Array, npt.NDArray[np.int16]] | None:
    """``(y, argmax)`` of shape ``(N, C, *out)``; ``None`` if ``y`` holds a NaN (see module docstring).

    ``argmax`` is the row-major index of the first tap of each window equal to its maximum.
    """
    taps = _taps(x, kernel, out)
    best = taps[0].copy()
    for tap in taps[1:]:
        np.maximum(best, tap, out=best)
    if np.isnan(best).any():
        return None
    found = taps[0] == best
    argmax = np.zeros(best.shape, dtype=np.int16)
    hit = np.empty(best.shape, dtype=bool)
    for k, tap in enumerate(taps[1:], start=1):
        np.equal(tap, best, out=hit)
        np.greater(hit, found, out=hit)  # equal here and at no earlier tap
        found |= hit
        argmax += hit * np.int16(k)
    return best, argmax


def scatter(
    argmax: npt.NDArray[np.int16], dy: Array, in_shape: tuple[int, ...], kernel: tuple[int, ...]
) -> Array:
    """``dx`` of shape ``in_shape``: ``dy`` at each window's chosen tap, zero elsewhere."""
    out = argmax.shape[2:]
    whole = all(o * k == n for o, k, n in zip(out, kernel, in_shape[2:], strict=True))
    # Every element of dx lies in exactly one tile unless a remainder is left over (zero there).
    dx = np.empty(in_shape, dtype=dy.dtype) if whole else np.zeros(in_shape, dtype=dy.dtype)
    for k, target in enumerate(_taps(dx, kernel, out)):
        np.multiply(argmax == k, dy, out=target)
    return dx
