"""Layers: each a factory returning a :class:`~functional_dl.types.Layer` (``dense(10)``, ``relu()``).

One way to build a layer
------------------------
Every layer module holds one unit: a ``Cache`` NamedTuple (what backward needs from forward, each
field commented with its shape), three module-level functions, and a factory that hands them to
the private builder :func:`functional_dl.layers._builder.build`:

* ``_shapes(in_shape, /, **hyper) -> (out_shape, specs)`` infers the output shape and declares
  every array the layer owns, ``{"w": ArraySpec((n_out, n_in), w_init), ...}``: the one place
  where a layer states its parameters' names, shapes and initializers (``buffer=True`` marks a
  non-trained array such as batch norm's running statistics). ``build`` makes ``init`` from it.
* ``_forward(params, x, ctx=EVAL, /, **hyper) -> (y, cache)``, checking its input with
  :mod:`functional_dl._checks` (shared with the losses).
* ``_backward(params, cache, dy, /, **hyper) -> (dx, grads)``.

``build(name, _shapes, _forward, _backward, **hyper)`` binds the hyperparameters into all three
with ``functools.partial`` (so the layer pickles) and returns the ``Layer``. Activations are the
same with less to write: :func:`~functional_dl.layers.elementwise.elementwise` builds one from a
``value(x)`` and a ``grad(x, y, dy)``. Array maths shared with the losses (sigmoid, softmax,
log-softmax) lives in :mod:`functional_dl._math`.

Export rule: a layer module's ``__all__`` is its factories and the types in their signatures
(cache, spec and options types); the functions it hands to ``build`` are private and reached
through the layer (``dense(3).forward``). Called on their own they need the factory's keyword
hyperparameters, and a forward bound one way with a backward bound another is a silent wrong
answer; through the layer they always agree. The underscored helper modules (``_builder``,
``_conv_options``, ``_conv_gemm``, ``_windows``, ``_adaptive_bins``, ``_erf``, ``_sdpa``,
``_dropout_mask``) export what their sibling modules import. ``transformer`` and ``decoder_only``
build layers out of other layers (and, for the latter, the combinators ``serial`` and ``tie``).

Writing your own layer
----------------------
A learned per-feature scale, ``y = a * x`` with ``a`` of shape ``(n,)``, so
``dx = a * dy`` and ``da = sum over the batch of x * dy``:

>>> from typing import NamedTuple
>>> import numpy as np
>>> import functional_dl as fdl
>>> from functional_dl.initializers import ones
>>> from functional_dl.layers._builder import ArraySpec, build
>>> class ScaleCache(NamedTuple):
...     x: fdl.Array  # (batch, n)
>>> def _shapes(in_shape, /):
...     return in_shape, {"a": ArraySpec((in_shape[-1],), ones())}
>>> def _forward(params, x, ctx=fdl.EVAL, /):
...     return x * params["a"], ScaleCache(x)
>>> def _backward(params, cache, dy, /):
...     return dy * params["a"], {"a": (dy * cache.x).sum(axis=0)}
>>> def scale():
...     return build("scale", _shapes, _forward, _backward)
>>> net = fdl.serial(fdl.layers.dense(3), scale())
>>> out_shape, params = net.init(fdl.random.key(0), (None, 4))
>>> out_shape, sorted(params)
((None, 3), ['0.b', '0.w', '1.a'])
>>> x = fdl.random.normal(fdl.random.key(1), (5, 4), np.float64)
>>> fdl.testing.check_gradients(net, params, x).passed
True

Add a case for it to the registry ``tests/layers/cases.py`` and the contract tests check its
shapes, dtypes, purity, pickling and gradients.
"""

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
from functional_dl.layers.adaptive_max_pool import adaptive_max_pool1d, adaptive_max_pool2d, global_max_pool
from functional_dl.layers.adaptive_pool import adaptive_avg_pool1d, adaptive_avg_pool2d, global_avg_pool
from functional_dl.layers.attention import AttentionInput, multi_head_attention
from functional_dl.layers.batch_norm import batch_norm, batch_norm1d, batch_norm2d
from functional_dl.layers.conv import conv1d, conv2d
from functional_dl.layers.conv_transpose import conv_transpose1d, conv_transpose2d
from functional_dl.layers.decoder_only import decoder_only_transformer
from functional_dl.layers.dense import dense
from functional_dl.layers.dropout import dropout
from functional_dl.layers.embedding import embedding
from functional_dl.layers.extra_activations import hard_swish, mish, relu6
from functional_dl.layers.gelu import gelu
from functional_dl.layers.glu import glu
from functional_dl.layers.norm import group_norm, layer_norm
from functional_dl.layers.pool import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from functional_dl.layers.positional import learned_positional_encoding, sinusoidal_positional_encoding
from functional_dl.layers.prelu import prelu
from functional_dl.layers.recurrent import RecurrentInput, gru, lstm, rnn
from functional_dl.layers.reshape import flatten, reshape
from functional_dl.layers.softmax import log_softmax, softmax
from functional_dl.layers.transformer import transformer_encoder_layer

__all__ = [
    "AttentionInput",
    "RecurrentInput",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "batch_norm1d",
    "batch_norm2d",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "decoder_only_transformer",
    "dense",
    "dropout",
    "elu",
    "embedding",
    "flatten",
    "gelu",
    "global_avg_pool",
    "global_max_pool",
    "glu",
    "group_norm",
    "gru",
    "hard_sigmoid",
    "hard_swish",
    "hard_tanh",
    "identity",
    "layer_norm",
    "leaky_relu",
    "learned_positional_encoding",
    "log_softmax",
    "lstm",
    "max_pool1d",
    "max_pool2d",
    "mish",
    "multi_head_attention",
    "prelu",
    "relu",
    "relu6",
    "reshape",
    "rnn",
    "selu",
    "sigmoid",
    "silu",
    "sinusoidal_positional_encoding",
    "softmax",
    "softplus",
    "swish",
    "tanh",
    "transformer_encoder_layer",
]
