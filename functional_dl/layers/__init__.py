"""Layers: each a factory returning a :class:`~functional_dl.types.Layer` (``dense(10)``, ``relu()``)."""

from functional_dl.layers.activations import (
    elu,
    hard_sigmoid,
    hard_tanh,
    identity,
    leaky_relu,
    relu,
    selu,
    sigmoid,
    silu,
    softplus,
    swish,
    tanh,
)
from functional_dl.layers.adaptive_pool import adaptive_avg_pool2d, global_avg_pool
from functional_dl.layers.batch_norm import batch_norm, batch_norm1d, batch_norm2d
from functional_dl.layers.conv import conv1d, conv2d
from functional_dl.layers.conv_transpose import conv_transpose2d
from functional_dl.layers.dense import dense
from functional_dl.layers.dropout import dropout
from functional_dl.layers.gelu import gelu
from functional_dl.layers.norm import group_norm, layer_norm
from functional_dl.layers.pool import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from functional_dl.layers.recurrent import RecurrentInput, gru, lstm, rnn
from functional_dl.layers.reshape import flatten, reshape
from functional_dl.layers.softmax import log_softmax, softmax

__all__ = [
    "RecurrentInput",
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "batch_norm1d",
    "batch_norm2d",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "dense",
    "dropout",
    "elu",
    "flatten",
    "gelu",
    "global_avg_pool",
    "group_norm",
    "gru",
    "hard_sigmoid",
    "hard_tanh",
    "identity",
    "layer_norm",
    "leaky_relu",
    "log_softmax",
    "lstm",
    "max_pool1d",
    "max_pool2d",
    "relu",
    "reshape",
    "rnn",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]
