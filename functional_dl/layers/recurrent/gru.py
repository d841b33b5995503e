"""The gated recurrent unit, ``torch.nn.GRU``, with PyTorch's gate order ``r, z, n``.

With ``W_ih = [W_ir; W_iz; W_in]`` and ``W_hh = [W_hr; W_hz; W_hn]`` stacked by rows (and the
biases likewise), one step is::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h' = (1 - z) * n + z * h

The reset gate multiplies the *whole* recurrent term of ``n``, bias included (PyTorch's form, not
the original paper's). Going back, with ``dh'`` the gradient reaching ``h'`` and
``hn = h W_hn^T + b_hn``::

    dn = dh' (1 - z)      dz = dh' (h - n)      da_n = dn (1 - n^2)      dr = da_n * hn
    da_r = dr r (1 - r)   da_z = dz z (1 - z)
    d(input term)     = [da_r, da_z, da_n]
    d(recurrent term) = [da_r, da_z, da_n * r]
    dh = dh' z + d(recurrent term) @ W_hh
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl._math import sigmoid
from functional_dl.layers.recurrent._cell import Cell, Saved, State
from functional_dl.layers.recurrent._layer import RecurrentCache, recurrent_layer
from functional_dl.types import Array, Layer

__all__ = ["gru"]


def _step(xw: Array, state: State, w_hh: Array, b_hh: Array | None, /) -> tuple[State, Saved]:
    h = state[0]
    n_h = h.shape[1]
    hw = h @ w_hh.T  # (batch, 3 H): the recurrent terms of r, z and n
    if b_hh is not None:
        hw += b_hh  # hw is our own fresh array
    rz = sigmoid(xw[:, : 2 * n_h] + hw[:, : 2 * n_h])
    r, z = rz[:, :n_h], rz[:, n_h:]
    hn = hw[:, 2 * n_h :]
    n = np.tanh(xw[:, 2 * n_h :] + r * hn)
    h_new = n + z * (h - n)  # (1 - z) n + z h, one product fewer
    return (h_new,), (h, rz, n, hn)


def _step_back(saved: Saved, w_hh: Array, dstate: State, da_x: Array, da_h: Array, /) -> State:
    h, rz, n, hn = saved
    n_h = h.shape[1]
    r, z = rz[:, :n_h], rz[:, n_h:]
    dh = dstate[0]
    da_n = dh * (1 - z) * (1 - n * n)
    np.multiply(da_n, hn, out=da_x[:, :n_h])  # dr, turned into da_r below together with dz
    np.multiply(dh, h - n, out=da_x[:, n_h : 2 * n_h])  # dz
    da_x[:, : 2 * n_h] *= rz * (1 - rz)
    da_x[:, 2 * n_h :] = da_n
    da_h[:, : 2 * n_h] = da_x[:, : 2 * n_h]
    np.multiply(da_n, r, out=da_h[:, 2 * n_h :])
    dh_prev = da_h @ w_hh
    dh_prev += dh * z  # dh_prev is our own fresh array
    return (dh_prev,)


_CELL = Cell("gru", 3, 1, _step, _step_back, separate_grads=True)


def gru(
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
    return_state: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[RecurrentCache]:
    """A GRU over ``(batch, time, features)``, as ``torch.nn.GRU(batch_first=True)``.

    Args:
        hidden_size: the state size ``H``; the weights stack ``3 H`` rows (gates ``r, z, n``).
        num_layers: stacked layers (see :mod:`functional_dl.layers.recurrent`).
        bias: whether to have the ``bias_*`` parameters.
        bidirectional: add a pass from the last step back.
        return_state: return the final state as well.
        dtype: the parameters' dtype (inputs must match it).

    The inputs, outputs and parameters are those of :mod:`functional_dl.layers.recurrent`.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = gru(6, bidirectional=True)
        >>> out_shape, params = layer.init(random.key(0), (None, 40, 1))
        >>> out_shape, params["weight_hh_l0_reverse"].shape
        ((None, 40, 12), (18, 6))
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
