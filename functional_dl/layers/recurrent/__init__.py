"""Recurrent layers over ``(batch, time, features)``: :func:`rnn`, :func:`gru` and :func:`lstm`.

Each follows its PyTorch namesake with ``batch_first=True``, so weights map across by key:
``weight_ih_l{k}`` ``(gates * H, n_in)``, ``weight_hh_l{k}`` ``(gates * H, H)``, ``bias_ih_l{k}``
and ``bias_hh_l{k}`` ``(gates * H,)``, with ``_reverse`` for the backward direction of a
bidirectional layer; the gates are stacked in PyTorch's order (GRU ``r, z, n``, LSTM
``i, f, g, o``). The equations are in each module's docstring.

Hyperparameters, shared by the three: ``hidden_size`` ``H``; ``num_layers`` stacked layers (layer
``l > 0`` reads layer ``l - 1``'s output sequence); ``bias`` (whether to have ``bias_*``);
``bidirectional`` (a second pass from the last step back, keys ``*_reverse``; its states sit
beside the forward pass's in the output); ``return_state`` (return the final state too); and
``dtype`` of the parameters, which the inputs must match. Parameters start ``U(-1/sqrt(H),
1/sqrt(H))``, as in PyTorch.

Inputs (the multi-input contract of :mod:`functional_dl.types`): either the sequence alone,
``x`` of shape ``(batch, time, features)``, or a tuple (or :class:`RecurrentInput`) of up to four
entries, ``(x, state, lengths, mask)``:

* ``state``: the initial state ``(layers * directions, batch, H)``, row ``l * directions + d``
  for layer ``l`` and direction ``d``, as PyTorch's ``h_0``; the pair ``(h_0, c_0)`` for the
  LSTM; ``None`` for zeros.
* ``lengths``: ``(batch,)`` integers in ``[0, time]``, or ``mask``: ``(batch, time)`` booleans,
  true at valid steps. A padded step leaves the state unchanged and outputs zeros (PyTorch's
  ``pack_padded_sequence`` / ``pad_packed_sequence``); the reverse direction starts at each
  sample's last valid step. Padded steps get exactly zero gradient.

Outputs: the output sequence ``(batch, time, directions * H)``, the last layer's ``h`` at every
step (both directions side by side); with ``return_state=True``, the pair ``(y, h_n)`` (LSTM:
``(y, (h_n, c_n))``), ``h_n`` shaped like the initial state and holding the state after each
direction's last visited step. Feeding ``h_n`` back as the next chunk's ``state`` continues the
sequence: that is truncated backpropagation through time, the gradient stopping at the chunk
boundary.

Gradients: ``backward`` takes ``dy`` (or ``(dy, dh_n)``, either part ``None`` when unused, the
LSTM's ``dh_n`` a pair ``(dh, dc)`` of which either may be ``None``) and returns ``dx`` shaped
like the input: an array for a bare ``x``, else the tuple ``(dx, dstate, None, None)`` cut to the
input's length, with ``dstate`` ``None`` when no state was given and ``None`` for lengths and
masks (integer and boolean inputs have no gradient).

Speed: the input projection of all steps is one matrix product per layer and direction; the loop
over time does one ``(batch, H) @ (H, gates * H)`` product per step each way; the weight
gradients are one matrix product each after the loop.
"""

from functional_dl.layers.recurrent._layer import RecurrentCache, RecurrentInput
from functional_dl.layers.recurrent.gru import gru
from functional_dl.layers.recurrent.lstm import lstm
from functional_dl.layers.recurrent.rnn import rnn

__all__ = ["RecurrentCache", "RecurrentInput", "gru", "lstm", "rnn"]
