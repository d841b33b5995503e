"""One direction of one recurrent layer: the fold over time, and the way back through it.

This is the one place in the library with a Python loop over time: step ``t`` needs the state
of step ``t - 1``. Everything that does not need it is outside the loop: the input projection
of every step is one matrix product before it (the caller's ``xw``), and the weight gradients
are one matrix product each after it (the caller's, from ``da_x``, ``da_h`` and ``h_prev``).

Arrays are time-major inside, ``(time, batch, ...)``, so each step reads and writes contiguous
blocks. A reverse direction visits ``t = T - 1, ..., 0``; every array stays indexed by time.

Padding: ``mask[t, b]`` false means step ``t`` of sample ``b`` is padding. There the state is
carried through unchanged and the output is zero::

    state_t = where(m_t, cell(x_t, state_{t-1}), state_{t-1})      y_t = where(m_t, h_t, 0)

so on the way back a padded step passes the state gradient through untouched and gives its
input, and the weights, exactly zero. With lengths (every valid step before every padded one)
the reverse direction starts at each sample's last valid step, as PyTorch's packed sequences do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from functional_dl.layers.recurrent._cell import Cell, State
from functional_dl.types import Array, BoolArray

__all__ = ["Run", "TimeCache", "run", "run_back"]


class TimeCache(NamedTuple):
    """What the way back needs from one direction's forward pass."""

    h_prev: Array  # (time, batch, hidden): the state h before each step
    saved: tuple[tuple[Array, ...], ...]  # per time step, what the cell saved
    reverse: bool


class Run(NamedTuple):
    """One direction's forward pass."""

    y: Array  # (time, batch, hidden): the output at each step (zero at padding)
    final: State  # the state after the last step visited
    cache: TimeCache


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def run(
    cell: Cell,
    xw: Array,
    state: State,
    w_hh: Array,
    b_hh: Array | None,
    *,
    mask: BoolArray | None,
    reverse: bool,
) -> Run:
    """The fold over time: ``state_t = cell(xw_t, state_{t-1})`` for each step in order.

    Args:
        cell: the recurrent cell.
        xw: ``(time, batch, gates * hidden)``, the input projections ``x_t W_ih^T + b_ih`` (and
            ``+ b_hh`` for a cell that folds its recurrent bias in).
        state: the initial state, each part ``(batch, hidden)``.
        w_hh: ``(gates * hidden, hidden)``.
        b_hh: ``(gates * hidden,)``, or ``None`` (no bias, or folded into ``xw``).
        mask: ``(time, batch, 1)``, false at padded steps, or ``None`` for none.
        reverse: visit the steps from last to first.
    """
    steps, batch = xw.shape[0], xw.shape[1]
    hidden = w_hh.shape[1]
    y = np.empty((steps, batch, hidden), xw.dtype)
    h_prev = np.empty((steps, batch, hidden), xw.dtype)
    saved: list[tuple[Array, ...]] = [()] * steps
    for t in _order(steps, reverse):
        h_prev[t] = state[0]
        new, saved[t] = cell.step(xw[t], state, w_hh, b_hh)
        if mask is None:
            y[t] = new[0]
            state = new
        else:
            m = mask[t]
            np.multiply(new[0], m, out=y[t])
            state = tuple(np.where(m, n, s) for n, s in zip(new, state, strict=True))
    return Run(y, state, TimeCache(h_prev, tuple(saved), reverse))


def run_back(
    cell: Cell, cache: TimeCache, w_hh: Array, dy: Array | None, dfinal: State, *, mask: BoolArray | None
) -> tuple[Array, Array, State]:
    """Back through time: the gradients of every step's two pre-activations and of the initial state.

    Args:
        cell: the recurrent cell.
        cache: :attr:`Run.cache` of the forward pass.
        w_hh: ``(gates * hidden, hidden)``.
        dy: ``(time, batch, hidden)``, the gradient of the outputs, or ``None`` for zero.
        dfinal: the gradient of the final state (zeros when the final state is unused).
        mask: as in :func:`run`.

    Returns:
        ``(da_x, da_h, dstate0)``: ``(time, batch, gates * hidden)`` twice (the same array for
        cells whose two terms share their gradient), and the initial state's gradient.
    """
    h_prev, saved = cache.h_prev, cache.saved
    steps, batch, hidden = h_prev.shape
    da_x = np.empty((steps, batch, cell.gates * hidden), h_prev.dtype)
    da_h = np.empty_like(da_x) if cell.separate_grads else da_x
    carry = dfinal
    for t in _order(steps, not cache.reverse):
        dnew = carry if dy is None else (carry[0] + dy[t], *carry[1:])
        if mask is not None:
            dnew = tuple(np.where(mask[t], d, 0) for d in dnew)
        dprev = cell.step_back(saved[t], w_hh, dnew, da_x[t], da_h[t])
        if mask is None:
            carry = dprev
        else:  # a padded step hands the state's gradient on untouched
            carry = tuple(np.where(mask[t], d, c) for d, c in zip(dprev, carry, strict=True))
    return da_x, da_h, carry
