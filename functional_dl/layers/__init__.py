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
* ``_forward(params, x, ctx=EVAL, /, **hyper, **slips) -> (y, cache)``; its first line is
  ``if slips: refuse_forward_keywords(name, slips)``, so ``forward(params, x, train=True)`` (a
  PyTorch habit) is an ``ArgumentError`` showing the call to write, not Python's ``unexpected
  keyword argument``; on the good path it costs the one test of an empty dict.
* ``_backward(params, cache, dy, /, **hyper) -> (dx, grads)``.

Both check what they are given, by the rules stated once in :mod:`functional_dl._checks` (shared
with the losses) and with its helpers: ``x``, ``dy`` and every param are arrays
(``check_float``, ``check_dy``); the params are what ``_shapes`` declares for the input at hand,
in forward *and* backward (``check_keys``, then ``check_param`` per key, the first one fixing the
layer's dtype); ``backward`` refuses a cache its forward did not make (``check_cache``; a cache
type several kinds of layer share carries a ``kind`` field, checked too); ``dy`` has the output's
shape and the layer's dtype. The factory checks its arguments with
:mod:`functional_dl.layers._args` (``positive_int``, ``flag``, ``real``, ``initializer``,
``float_dtype``), and the builder's ``init`` checks the key and ``in_shape`` for every layer.
``tests/test_sweep_layers.py`` feeds every registry case inputs wrong in one way at a time.

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
``_args``, ``_conv_options``, ``_conv_gemm``, ``_windows``, ``_adaptive_bins``, ``_erf``, ``_sdpa``,
``_dropout_mask``) export what their sibling modules import. ``transformer`` and ``decoder_only``
build layers out of other layers (and, for the latter, the combinators ``serial`` and ``tie``).

Writing your own layer
----------------------
A learned per-feature scale, ``y = a * x`` with ``a`` of shape ``(n,)``, so
``dx = a * dy`` and ``da = sum over the batch of x * dy``:

>>> from typing import NamedTuple
>>> import numpy as np
>>> import functional_dl as fdl
>>> from functional_dl._checks import check_cache, check_dy, check_float, check_keys, check_param
>>> from functional_dl.initializers import ones
>>> from functional_dl.layers._builder import ArraySpec, build
>>> class ScaleCache(NamedTuple):
...     x: fdl.Array  # (batch, n)
>>> def _shapes(in_shape, /):
...     return in_shape, {"a": ArraySpec((in_shape[-1],), ones())}
>>> def _scale(params, x):  # the params are what _shapes declares for x, in x's dtype
...     check_keys(params, {"a"}, "scale")
...     return check_param(params, "a", x.shape[-1:], "scale", x.dtype)
>>> def _forward(params, x, ctx=fdl.EVAL, /):
...     check_float(x, "scale")
...     return x * _scale(params, x), ScaleCache(x)
>>> def _backward(params, cache, dy, /):
...     check_cache(cache, ScaleCache, "scale")
...     a = _scale(params, cache.x)
...     check_dy(dy, cache.x.shape, cache.x.dtype, "scale")
...     return dy * a, {"a": (dy * cache.x).sum(axis=0)}
>>> def scale():
...     return build("scale", _shapes, _forward, _backward)
>>> net = fdl.serial(fdl.layers.dense(3), scale())
>>> out_shape, params = net.init(fdl.random.key(0), (None, 4))
>>> out_shape, sorted(params)
((None, 3), ['0.b', '0.w', '1.a'])
>>> x = fdl.random.normal(fdl.random.key(1), (5, 4), np.float64)
>>> fdl.testing.check_gradients(net, params, x).passed
True
>>> net.forward({**params, "1.a": np.ones(2, np.float32)}, x.astype(np.float32))
Traceback (most recent call last):
...
functional_dl.errors.ShapeError: 1.scale: expected parameter 'a' of shape (3,), got (2,)

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
