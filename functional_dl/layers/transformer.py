"""The transformer encoder layer, as ``torch.nn.TransformerEncoderLayer(batch_first=True)``.

Made of the library's own layers, held as children under PyTorch's attribute names: ``self_attn``
(:func:`~functional_dl.layers.multi_head_attention` with attention dropout), ``linear1``
``(dim_feedforward, d_model)``, ``dropout``, ``linear2`` ``(d_model, dim_feedforward)``,
``norm1``, ``norm2`` (:func:`~functional_dl.layers.layer_norm`), ``dropout1``, ``dropout2`` and
``activation`` (relu or gelu). With ``sa(x) = dropout1(self_attn(x))`` and
``ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))``::

    norm_first=False (post-norm, the original):  h = norm1(x + sa(x));   y = norm2(h + ff(h))
    norm_first=True  (pre-norm, GPT-2's):        h = x + sa(norm1(x));   y = h + ff(norm2(h))

and backward runs the same graph in reverse, the skip connections adding their gradients
(post-norm: ``dh = norm2'(dy)``, ``dh += ff'(dh)``; ``dx = norm1'(dh)``, ``dx += sa'(dx)``).

Parameter keys are the children's keys under those names: ``self_attn.in_proj_weight``,
``self_attn.in_proj_bias``, ``self_attn.out_proj.weight``, ``self_attn.out_proj.bias``,
``linear1.w``, ``linear1.b``, ``linear2.w``, ``linear2.b``, ``norm1.scale``, ``norm1.bias``,
``norm2.scale``, ``norm2.bias``: PyTorch's ``state_dict`` names with a dense layer's ``weight``,
``bias`` called ``w``, ``b`` and a layer norm's ``weight`` called ``scale``, the renaming that
:mod:`functional_dl.interop` does for this kind.

Input (the multi-input contract of :mod:`functional_dl.types`): ``x`` of shape
``(batch, time, d_model)``, or the tuple ``(x, key_padding_mask)`` (the mask as
``multi_head_attention`` takes it, ``True`` at padded positions), which gives the tuple
``(y, key_padding_mask)``: the mask passes through, so layers stack in a ``serial`` as in
PyTorch's ``TransformerEncoder``. ``causal=True`` is PyTorch's square subsequent mask. The
backward of a tuple takes ``(dy, None)`` and gives ``(dx, None)``.

Why a combinator of its own rather than ``serial(residual(...), ...)``: the key padding mask must
reach the attention and nothing else, and the keys must carry PyTorch's module names, which a
positional ``serial`` would number instead. The children are data as for every combinator
(``Layer.children``, ``Layer.rebuild``), so :mod:`functional_dl.inspect` shows every part.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_float,
    is_array,
    not_an_array,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.combinators._routing import bad_context, child_contexts, index_of, join_children, route
from functional_dl.errors import DomainError, LayerError, ShapeError, describe_shape
from functional_dl.initializers import uniform, variance_scaling
from functional_dl.layers._args import flag, positive_int
from functional_dl.layers._builder import check_in_shape
from functional_dl.layers.activations import relu
from functional_dl.layers.attention import multi_head_attention
from functional_dl.layers.dense import dense
from functional_dl.layers.dropout import dropout as dropout_layer
from functional_dl.layers.gelu import gelu
from functional_dl.layers.norm import layer_norm
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import check_key, split
from functional_dl.types import EMPTY, EVAL, Array, Buffers, Child, Context, Key, Layer, Params

__all__ = ["TransformerEncoderCache", "transformer_encoder_layer"]

_NAME = "transformer_encoder_layer"
#: The children, in PyTorch's order of registration (so ``params`` lists keys as its state_dict does).
_SEGMENTS = (
    "self_attn",
    "linear1",
    "dropout",
    "linear2",
    "norm1",
    "norm2",
    "dropout1",
    "dropout2",
    "activation",
)
_INDEX = index_of(_SEGMENTS)
_SA, _L1, _DROP, _L2, _N1, _N2, _D1, _D2, _ACT = range(len(_SEGMENTS))
_FF = (_L1, _ACT, _DROP, _L2, _D2)  # the feed-forward block, in order


class TransformerEncoderCache(NamedTuple):
    """What backward needs from forward."""

    caches: tuple[object, ...]  # the children's caches, in the order of _SEGMENTS (opaque)
    tupled: bool  # the input was (x, key_padding_mask): dx is (dx, None)
    masked: bool  # the attention got (x, mask): its dx is a tuple too
    norm_first: bool  # the order the children ran in, which backward retraces


class _Config(NamedTuple):
    norm_first: bool


# --- running the children ------------------------------------------------------------------------------


def _child_forward(
    children: tuple[Layer[Any], ...], params: list[dict[str, Array]], ctxs: Any, i: int, x: Any
) -> tuple[Any, object]:
    """Child ``i``'s forward, its errors prefixed with its name."""
    try:
        return children[i].forward(params[i], x, ctxs[i])
    except LayerError as err:
        raise err.under(_SEGMENTS[i]) from None


def _child_backward(
    children: tuple[Layer[Any], ...],
    params: list[dict[str, Array]],
    caches: tuple[object, ...],
    i: int,
    dy: Any,
) -> tuple[Any, Params]:
    """Child ``i``'s backward, its errors prefixed with its name."""
    try:
        return children[i].backward(params[i], caches[i], dy)
    except LayerError as err:
        raise err.under(_SEGMENTS[i]) from None


def _split_input(x: Any) -> tuple[Array, Any, bool]:
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ShapeError(_NAME, f"expected x or the tuple (x, key_padding_mask), got a tuple of {len(x)}")
        seq, mask, tupled = x[0], x[1], True
    else:
        seq, mask, tupled = x, None, False
    if not is_array(seq):
        raise not_an_array(seq, "the input", _NAME)
    if seq.ndim != 3:
        raise ShapeError(
            _NAME, f"expected input of shape (batch, time, d_model), got {describe_shape(seq.shape)}"
        )
    check_float(seq, _NAME)
    return seq, mask, tupled


def _encoder_forward(
    children: tuple[Layer[Any], ...],
    cfg: _Config,
    params: Params,
    x_in: Any,
    ctx: Context = EVAL,
    /,
    **slips: object,
) -> tuple[Any, TransformerEncoderCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_NAME, slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, _NAME)
    x, mask, tupled = _split_input(x_in)
    parts = route(params, _INDEX, _NAME)
    ctxs = child_contexts(ctx, _INDEX, _NAME)
    caches: list[object] = [None] * len(children)

    def run(i: int, h: Any) -> Any:  # child i on h, keeping its cache
        out, caches[i] = _child_forward(children, parts, ctxs, i, h)
        return out

    def attend(h: Array) -> Array:  # sa(h) = dropout1(self_attn(h))
        out: Array = run(_D1, run(_SA, h if mask is None else (h, mask)))
        return out

    def feed_forward(h: Array) -> Array:  # ff(h) = dropout2(linear2(dropout(activation(linear1(h)))))
        for i in _FF:
            h = run(i, h)
        return h

    if cfg.norm_first:
        h = x + attend(run(_N1, x))
        y = h + feed_forward(run(_N2, h))
    else:
        h = run(_N1, x + attend(x))
        y = run(_N2, h + feed_forward(h))
    cache = TransformerEncoderCache(tuple(caches), tupled, mask is not None, cfg.norm_first)
    return ((y, mask) if tupled else y), cache


def _encoder_backward(
    children: tuple[Layer[Any], ...],
    cfg: _Config,
    params: Params,
    cache: TransformerEncoderCache,
    dy_in: Any,
    /,
) -> tuple[Any, Params]:
    check_cache(cache, TransformerEncoderCache, _NAME)
    if cache.norm_first != cfg.norm_first:  # the same children in another order: a wrong gradient
        wrong_cache(cache, f"TransformerEncoderCache of norm_first={cfg.norm_first}", _NAME)
    if cache.tupled != isinstance(dy_in, tuple) or (cache.tupled and len(dy_in) != 2):
        raise ShapeError(
            _NAME, "expected dy as (dy, None) for a tuple input, and an array for an array input"
        )
    dy: Array = dy_in[0] if cache.tupled else dy_in
    parts = route(params, _INDEX, _NAME)
    grads: list[Params] = [EMPTY] * len(children)

    def back(i: int, d: Any) -> Any:  # child i's backward, keeping its grads
        dx, grads[i] = _child_backward(children, parts, cache.caches, i, d)
        return dx

    def attend_back(d: Array) -> Array:
        dx = back(_SA, back(_D1, d))
        out: Array = dx[0] if cache.masked else dx  # (dx, None) when the attention got the mask
        return out

    def feed_forward_back(d: Array) -> Array:
        for i in reversed(_FF):
            d = back(i, d)
        return d

    if cfg.norm_first:
        dh = dy + back(_N2, feed_forward_back(dy))
        dx = dh + back(_N1, attend_back(dh))
    else:
        dh = back(_N2, dy)
        dh = dh + feed_forward_back(dh)
        dz = back(_N1, dh)
        dx = dz + attend_back(dz)
    return ((dx, None) if cache.tupled else dx), join_children(grads, _SEGMENTS)


# --- init ---------------------------------------------------------------------------------------------


def _encoder_init(
    children: tuple[Layer[Any], ...], cfg: _Config, key: Key, in_shape: Any, /
) -> tuple[Any, Params, Buffers]:
    check_key(key)
    check_in_shape(in_shape, _NAME, nested=True)
    seq = in_shape[0] if in_shape and isinstance(in_shape[0], tuple) else in_shape
    if not isinstance(seq, tuple) or len(seq) != 3 or (seq is not in_shape and len(in_shape) != 2):
        raise ShapeError(
            _NAME,
            "expected an input shape (batch, time, d_model), or the pair of it and the key padding "
            f"mask's, got {in_shape!r}",
        )
    keys = split(key, len(children))
    params: list[Params] = [EMPTY] * len(children)

    def init(i: int, shape: Any) -> Any:
        try:
            out, params[i], _ = children[i].init_with_buffers(keys[i], shape)
        except LayerError as err:
            raise err.under(_SEGMENTS[i]) from None
        return out

    attn_shape = in_shape if seq is not in_shape else seq
    for i in (_N1, _SA, _D1, _N2):  # shape-preserving: each sees the sequence's shape
        init(i, attn_shape if i == _SA else seq)
    shape = seq
    for i in _FF:
        shape = init(i, shape)
    if tuple(shape) != tuple(seq):
        raise ShapeError(
            _NAME, f"the feed-forward block maps {describe_shape(seq)} to {describe_shape(shape)}"
        )
    merged = merge_params(*(prefix(p, s) for p, s in zip(params, _SEGMENTS, strict=True)))
    return in_shape, FrozenParams(merged), EMPTY


def _encoder_rebuild(cfg: _Config, layers: tuple[Layer[Any], ...], /) -> Layer[TransformerEncoderCache]:
    return _encoder_over(tuple(layers), cfg)


def _encoder_over(children: tuple[Layer[Any], ...], cfg: _Config) -> Layer[TransformerEncoderCache]:
    """The encoder layer over these children (in the order of ``_SEGMENTS``)."""
    return Layer(
        init_with_buffers=partial(_encoder_init, children, cfg),
        forward=partial(_encoder_forward, children, cfg),
        backward=partial(_encoder_backward, children, cfg),
        name=_NAME,
        reads_context=any(child.reads_context for child in children),
        children=tuple(Child(seg, child) for seg, child in zip(_SEGMENTS, children, strict=True)),
        rebuild=partial(_encoder_rebuild, cfg),
    )


def _linear(n_out: int, n_in: int, dtype: npt.DTypeLike) -> Layer[Any]:
    """A dense layer initialised as ``torch.nn.Linear``: both arrays ``U(-1/sqrt(n_in), 1/sqrt(n_in))``."""
    return dense(
        n_out,
        w_init=variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
        b_init=uniform(1.0 / math.sqrt(n_in)),
        dtype=dtype,
    )


def _activation(activation: object) -> Layer[Any]:
    if activation == "relu":
        return relu()
    if activation == "gelu":
        return gelu()
    if isinstance(activation, Layer):
        return activation
    raise DomainError(_NAME, f"activation must be 'relu', 'gelu' or a Layer, got {activation!r}")


def transformer_encoder_layer(
    d_model: int,
    heads: int,
    dim_feedforward: int = 2048,
    dropout: float = 0.1,
    *,
    activation: Literal["relu", "gelu"] | Layer[Any] = "relu",
    norm_first: bool = False,
    layer_norm_eps: float = 1e-5,
    causal: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[TransformerEncoderCache]:
    """A transformer encoder layer (``nn.TransformerEncoderLayer(d_model, heads, ...)``; see the module).

    Args:
        d_model: the feature size of the input and output; a multiple of ``heads``.
        heads: number of attention heads.
        dim_feedforward: the hidden size of the feed-forward block.
        dropout: the drop probability of ``dropout``, ``dropout1``, ``dropout2`` and of the
            attention weights, in training mode (PyTorch's one ``dropout``).
        activation: ``"relu"``, ``"gelu"`` (exact), or any shape-preserving layer.
        norm_first: pre-norm (layer norm before each block) instead of post-norm.
        layer_norm_eps: the layer norms' ``eps``.
        causal: position ``i`` attends to positions ``j <= i`` only.
        dtype: dtype of the parameters (inputs must match it).

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> layer = transformer_encoder_layer(8, 2, 16, dropout=0.1, norm_first=True)
        >>> _, params = layer.init(fdl.random.key(0), (None, 5, 8))
        >>> list(params)[:3]
        ['self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight']
        >>> x, padded = np.ones((2, 5, 8), np.float32), np.zeros((2, 5), bool)
        >>> (y, mask), _ = layer.forward(params, (x, padded))    # evaluation: no dropout
        >>> y.shape, mask is padded
        ((2, 5, 8), True)
    """
    dim_feedforward = positive_int(dim_feedforward, "dim_feedforward", _NAME)
    children = (
        multi_head_attention(d_model, heads, causal=causal, dropout=dropout, dtype=dtype),
        _linear(dim_feedforward, d_model, dtype),
        dropout_layer(dropout),
        _linear(d_model, dim_feedforward, dtype),
        layer_norm(eps=layer_norm_eps, dtype=dtype),
        layer_norm(eps=layer_norm_eps, dtype=dtype),
        dropout_layer(dropout),
        dropout_layer(dropout),
        _activation(activation),
    )
    return _encoder_over(children, _Config(flag(norm_first, "norm_first", _NAME)))
