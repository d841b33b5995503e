"""The Elman recurrent layer, ``torch.nn.RNN``: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

``act`` is ``tanh`` (the default) or ``relu``. With ``a_t`` the pre-activation and ``dh_t`` the
gradient reaching ``h_t`` (from the output at ``t`` and from step ``t + 1``)::

    da_t = dh_t * (1 - h_t^2)         (tanh)        da_t = dh_t * [a_t > 0]      (relu)
    dh_{t-1} += da_t @ W_hh

and ``da_t`` is the gradient of both the input term and the recurrent term. Everything shared by
the three recurrent layers (several layers, both directions, lengths and masks, the parameter
names) is described in :mod:`functional_dl.layers.recurrent`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from functional_dl.errors import DomainError
from functional_dl.layers.recurrent._cell import Cell, Saved, State
from functional_dl.layers.recurrent._layer import RecurrentCache, recurrent_layer
from functional_dl.types import Array, Layer

__all__ = ["rnn"]


def _pre_activation(xw: Array, h: Array, w_hh: Array, b_hh: Array | None) -> Array:
    a = h @ w_hh.T
    a += xw  # a is our own fresh array
    if b_hh is not None:
        a += b_hh
    return a


def _tanh_step(xw: Array, state: State, w_hh: Array, b_hh: Array | None, /) -> tuple[State, Saved]:
    h = np.tanh(_pre_activation(xw, state[0], w_hh, b_hh))
    return (h,), (h,)


def _tanh_step_back(saved: Saved, w_hh: Array, dstate: State, da: Array, _: Array, /) -> State:
    (h,) = saved
    np.multiply(dstate[0], 1 - h * h, out=da)
    return (da @ w_hh,)


def _relu_step(xw: Array, state: State, w_hh: Array, b_hh: Array | None, /) -> tuple[State, Saved]:
    h = np.maximum(_pre_activation(xw, state[0], w_hh, b_hh), 0)
    return (h,), (h,)


def _relu_step_back(saved: Saved, w_hh: Array, dstate: State, da: Array, _: Array, /) -> State:
    (h,) = saved
    np.multiply(dstate[0], h > 0, out=da)  # h > 0 exactly where the pre-activation is
    return (da @ w_hh,)


_CELLS = {
    "tanh": Cell("rnn", 1, 1, _tanh_step, _tanh_step_back, folds_bias=True),
    "relu": Cell("rnn", 1, 1, _relu_step, _relu_step_back, folds_bias=True),
}


def rnn(
    hidden_size: int,
    *,
    nonlinearity: Literal["tanh", "relu"] = "tanh",
    num_layers: int = 1,
    bias: bool = True,
    bidirectional: bool = False,
    return_state: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[RecurrentCache]:
    """An Elman RNN over ``(batch, time, features)``, as ``torch.nn.RNN(batch_first=True)``.

    Args:
        hidden_size: the state size ``H``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        num_layers: stacked layers (see :mod:`functional_dl.layers.recurrent`).
        bias: whether to have the ``bias_*`` parameters.
        bidirectional: add a pass from the last step back.
        return_state: return the final state as well.
        dtype: the parameters' dtype (inputs must match it).

    The inputs, outputs and parameters are those of :mod:`functional_dl.layers.recurrent`.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = rnn(4, num_layers=2)
        >>> out_shape, params = layer.init(random.key(0), (None, 5, 3))
        >>> out_shape, params["weight_ih_l1"].shape
        ((None, 5, 4), (4, 4))
        >>> y, cache = layer.forward(params, np.ones((2, 5, 3), np.float32))
        >>> y.shape
        (2, 5, 4)
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in _CELLS:
        raise DomainError("rnn", f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return recurrent_layer(
        _CELLS[nonlinearity],
        hidden_size,
        num_layers,
        bias=bias,
        bidirectional=bidirectional,
        return_state=return_state,
        dtype=dtype,
    )
