"""Max pooling over non-overlapping windows: the fast path of :mod:`functional_dl.layers.pool`.

When the stride equals the kernel and there is no padding and no dilation (``max_pool2d(2)``, the
common case), the windows tile the input, and the maximum over a window is the maximum over its
last axis of the maxima over the others. :func:`max_and_picks` reduces one spatial axis at a time,
last axis first: along an axis of kernel ``k`` the taps are the ``k`` strided slices
``j : o k : k`` of the previous result, and

    m_d = max_j m_{d+1}[..., j :: k_d, ...],   pick_d = the first j attaining it

with ``m_{nd}`` the input and ``m_0`` the output. Each step is a few elementwise calls on arrays
no larger than its input (NumPy's reductions over short, strided window axes are several times
slower), and the number of calls grows with ``sum(k)`` rather than ``prod(k)``.

The tie rule is PyTorch's: the chosen tap is the first maximal one in row-major order. Taking the
first maximum along the last axis within every row, then the first row whose maximum is the
window's, gives exactly that tap. A NaN breaks the comparisons; PyTorch lets the *last* NaN of a
window win, so :func:`max_and_picks` declines (returns ``None``) when the maximum holds a NaN, and
the caller takes the general path.

:func:`scatter` runs the steps backwards: the gradient of ``m_{d+1}`` is that of ``m_d`` in the
slices ``pick_d == j`` and zero elsewhere, each slice written once (the windows are disjoint).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl import _recycle as recycle
from functional_dl.layers._windows import Pads
from functional_dl.types import Array

__all__ = ["Picks", "applies", "max_and_picks", "scatter"]

#: Per spatial axis ``d``, the tap ``j < k_d`` chosen along it, of the shape of ``m_d`` (module docstring).
Picks = tuple[npt.NDArray[np.int8], ...]


def applies(kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], pads: Pads) -> bool:
    """Whether the windows tile the input: stride == kernel, dilation 1 and no padding (nor overhang)."""
    return stride == kernel and all(d == 1 for d in dilation) and not any(lo or hi for lo, hi in pads)


def _taps(a: Array, axis: int, k: int, o: int) -> list[Array]:
    """The ``k`` strided views ``a[..., j : o k : k, ...]`` along ``axis`` (the remainder is left out)."""
    lead = (slice(None),) * axis
    return [a[(*lead, slice(j, o * k, k))] for j in range(k)]


def max_and_picks(x: Array, kernel: tuple[int, ...], out: tuple[int, ...]) -> tuple[Array, Picks] | None:
    """``(y, picks)``: ``y`` of shape ``(N, C, *out)``; ``None`` if ``y`` holds a NaN (module docstring)."""
    m = x
    picks: list[npt.NDArray[np.int8]] = []
    for axis in reversed(range(len(kernel))):
        taps = _taps(m, 2 + axis, kernel[axis], out[axis])
        best = recycle.empty(taps[0].shape, m.dtype)  # recycled memory: no fresh pages per step
        pick = recycle.empty(best.shape, np.int8)
        if len(taps) > 1:
            np.maximum(taps[0], taps[1], out=best)
            np.greater(taps[1], taps[0], out=pick, casting="unsafe")  # strictly: ties keep the first
        else:
            np.copyto(best, taps[0])
            pick.fill(0)
        for j, tap in enumerate(taps[2:], start=2):
            better = tap > best
            np.maximum(best, tap, out=best)
            np.copyto(pick, np.int8(j), where=better)
        picks.append(pick)
        m = best
    if np.isnan(m).any():
        return None
    return m, tuple(reversed(picks))


def scatter(picks: Picks, dy: Array, in_shape: tuple[int, ...], kernel: tuple[int, ...]) -> Array:
    """``dx`` of shape ``in_shape``: ``dy`` at each window's chosen tap, zero elsewhere."""
    grad = dy
    for axis, pick in enumerate(picks):
        k, o, n = kernel[axis], dy.shape[2 + axis], in_shape[2 + axis]
        shape = (*pick.shape[: 2 + axis], n, *pick.shape[3 + axis :])
        # Every entry lies in exactly one slice unless a remainder is left over (zero there).
        wider = recycle.empty(shape, dy.dtype)
        if o * k != n:
            wider.fill(0)
        for j, target in enumerate(_taps(wider, 2 + axis, k, o)):
            np.multiply(pick == j, grad, out=target)
        grad = wider
    return grad
