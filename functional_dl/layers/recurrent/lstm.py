"""Long short-term memory, ``torch.nn.LSTM``, with PyTorch's gate order ``i, f, g, o``.

With the four gates' weights stacked by rows in ``W_ih`` and ``W_hh`` (and the biases likewise),
``a = x W_ih^T + b_ih + h W_hh^T + b_hh`` split into ``a_i, a_f, a_g, a_o`` and::

    i = sigmoid(a_i)     f = sigmoid(a_f)     g = tanh(a_g)     o = sigmoid(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Going back, with ``dh'`` and ``dc'`` the gradients reaching ``h'`` and ``c'``::

    do = dh' tanh(c')            dc = dc' + dh' o (1 - tanh(c')^2)
    di = dc g    df = dc c    dg = dc i    dc_prev = dc f
    da = [di i (1 - i), df f (1 - f), dg (1 - g^2), do o (1 - o)]
    dh_prev = da @ W_hh

``da`` is the gradient of both the input term and the recurrent term.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl._math import sigmoid
from functional_dl.layers.recurrent._cell import Cell, Saved, State
from functional_dl.layers.recurrent._layer import RecurrentCache, recurrent_layer
from functional_dl.types import Array, Layer

__all__ = ["lstm"]


def _gates_plain(a: Array) -> Array:
    """``[sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)]``: the formula, the fast path's reference."""
    n_h = a.shape[1] // 4
    gates = sigmoid(a)
    gates[:, 2 * n_h : 3 * n_h] = np.tanh(a[:, 2 * n_h : 3 * n_h])
    return gates


def _gates_fast(a: Array) -> Array:
    """:func:`_gates_plain` with one ``tanh`` over all four blocks, overwriting ``a`` (our own array).

    ``sigmoid(x) = (1 + tanh(x / 2)) / 2`` exactly, so halving the ``i, f, o`` blocks, taking one
    ``tanh`` of everything and mapping those blocks back by ``t -> (t + 1) / 2`` gives all four
    gates in about a third of the passes over memory that a separate stable sigmoid takes. It
    agrees with :func:`_gates_plain` to rounding (the tests bound the difference by a few ulp).
    """
    n_h = a.shape[1] // 4
    if_gates, o_gate = a[:, : 2 * n_h], a[:, 3 * n_h :]  # i and f side by side, then o
    if_gates *= 0.5
    o_gate *= 0.5
    np.tanh(a, out=a)
    if_gates += 1
    if_gates *= 0.5
    o_gate += 1
    o_gate *= 0.5
    return a


def _step(xw: Array, state: State, w_hh: Array, b_hh: Array | None, /) -> tuple[State, Saved]:
    h, c = state
    n_h = h.shape[1]
    a = h @ w_hh.T
    a += xw  # a is our own fresh array
    if b_hh is not None:
        a += b_hh
    gates = _gates_fast(a)
    i, f, g, o = (gates[:, k * n_h : (k + 1) * n_h] for k in range(4))
    c_new = f * c
    c_new += i * g
    tc = np.tanh(c_new)
    return (o * tc, c_new), (gates, c, tc)


def _step_back(saved: Saved, w_hh: Array, dstate: State, da: Array, _: Array, /) -> State:
    gates, c, tc = saved
    n_h = c.shape[1]
    i, f, g, o = (gates[:, k * n_h : (k + 1) * n_h] for k in range(4))
    dh, dc_next = dstate
    dc = dh * o
    dc *= 1 - tc * tc
    dc += dc_next  # dc = dc' + dh' o (1 - tanh(c')^2), in our own array
    # First the gradients of the gate values, then of their inputs.
    np.multiply(dc, g, out=da[:, :n_h])  # di
    np.multiply(dc, c, out=da[:, n_h : 2 * n_h])  # df
    np.multiply(dc, i, out=da[:, 2 * n_h : 3 * n_h])  # dg
    np.multiply(dh, tc, out=da[:, 3 * n_h :])  # do
    slope = 1 - gates
    slope *= gates  # sigmoid' = s (1 - s) for i, f, o ...
    np.subtract(1, g * g, out=slope[:, 2 * n_h : 3 * n_h])  # ... and tanh' = 1 - g^2 for g
    da *= slope
    return (da @ w_hh, dc * f)


_CELL = Cell("lstm", 4, 2, _step, _step_back, folds_bias=True)


def lstm(
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
    return_state: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[RecurrentCache]:
    """An LSTM over ``(batch, time, features)``, as ``torch.nn.LSTM(batch_first=True)``.

    Args:
        hidden_size: the state size ``H``; the weights stack ``4 H`` rows (gates ``i, f, g, o``).
        num_layers: stacked layers (see :mod:`functional_dl.layers.recurrent`).
        bias: whether to have the ``bias_*`` parameters.
        bidirectional: add a pass from the last step back.
        return_state: return the final state as well.
        dtype: the parameters' dtype (inputs must match it).

    The state, as input and output, is the pair ``(h, c)``, as in PyTorch; the inputs, outputs
    and parameters are otherwise those of :mod:`functional_dl.layers.recurrent`.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = lstm(8, return_state=True)
        >>> out_shape, params = layer.init(random.key(0), (None, 10, 3))
        >>> out_shape
        ((None, 10, 8), ((1, None, 8), (1, None, 8)))
    """
    return recurrent_layer(
        _CELL,
        hidden_size,
        num_layers,
        bias=bias,
        bidirectional=bidirectional,
        return_state=return_state,
        dtype=dtype,
    )
