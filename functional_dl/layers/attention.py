"""Multi-head attention on ``(batch, time, d_model)``, as ``torch.nn.MultiheadAttention(batch_first=True)``.

With ``h`` heads of size ``dh = d_model / h``, queries from ``query`` ``(b, t, d_model)`` and keys
and values from ``key`` ``(b, s, kdim)`` and ``value`` ``(b, s, vdim)``::

    q = query @ W_q^T + b_q,   k = key @ W_k^T + b_k,   v = value @ W_v^T + b_v    split per head
    o_head = softmax(q_head k_head^T / sqrt(dh) + mask) v_head                     (b, h, t, dh)
    y      = concat_heads(o) @ out_proj.weight^T + out_proj.bias                   (b, t, d_model)

The parameter keys and layouts are PyTorch's, so a ``MultiheadAttention`` ``state_dict`` maps onto
these params unchanged: when ``kdim == vdim == d_model`` the three projections are packed in
``in_proj_weight`` ``(3 d_model, d_model)`` (rows ``W_q``, ``W_k``, ``W_v``), otherwise they are
``q_proj_weight`` ``(d_model, d_model)``, ``k_proj_weight`` ``(d_model, kdim)`` and
``v_proj_weight`` ``(d_model, vdim)``; ``in_proj_bias`` ``(3 d_model,)`` packs ``b_q, b_k, b_v``
either way, and ``out_proj.weight``, ``out_proj.bias`` are the output projection.

Inputs (the multi-input contract of :mod:`functional_dl.types`):

* self-attention (the default, ``mha(x, x, x)``): ``x`` alone, or the tuple
  ``(x, key_padding_mask)``; the projection of ``x`` is one matrix product with ``in_proj_weight``;
* cross-attention (``cross=True``): the tuple (or :class:`AttentionInput`) ``(query, key, value)``
  or ``(query, key, value, key_padding_mask)``; the keys' length ``s`` may differ from ``t``.

``key_padding_mask`` is a boolean ``(b, s)`` array, ``True`` at padded keys (as PyTorch's), or
``None``. ``causal=True`` lets query ``i`` see keys ``j <= i`` only (PyTorch's ``is_causal``
mask). A masked key gets exactly zero weight and zero gradient (see
:mod:`functional_dl.layers._sdpa`). ``backward`` returns ``dx`` shaped like the input: an array
for a bare ``x``, else the tuple with ``None`` for the mask (``(dx, None)``, ``(dquery, dkey,
dvalue)``, ``(dquery, dkey, dvalue, None)``).

Dropout on the attention weights (``dropout=rate``, PyTorch's ``dropout``) is active only in
training mode (``ctx.train``) and draws its mask from ``ctx.key`` as :func:`~functional_dl.layers.dropout`
does, so the same key gives the same mask; in evaluation, or with ``dropout=0``, the layer is
deterministic and ignores the context.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_keys,
    check_param,
    check_same_dtype,
    not_an_array,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, DTypeError, ShapeError, describe_shape
from functional_dl.initializers import glorot_uniform, uniform, zeros
from functional_dl.layers._args import flag, positive_int, real
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.layers._dropout_mask import dropout_mask
from functional_dl.layers._sdpa import attention_backward, attention_forward
from functional_dl.types import EVAL, Array, BoolArray, Context, Layer, Params

__all__ = ["AttentionInput", "MultiHeadAttentionCache", "multi_head_attention"]

_NAME = "multi_head_attention"
_OUT = ("out_proj.weight", "out_proj.bias")
_PACKED = frozenset({"in_proj_weight", "in_proj_bias", *_OUT})
_SEPARATE = frozenset({"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", *_OUT})
_INPUTS = ("query", "key", "value")


class AttentionInput(NamedTuple):
    """The inputs of cross-attention (``cross=True``), in order; a plain tuple in this order works the same.

    Attributes:
        query: ``(batch, t, d_model)``.
        key: ``(batch, s, kdim)``.
        value: ``(batch, s, vdim)``.
        key_padding_mask: ``(batch, s)`` booleans, ``True`` at padded keys; ``None`` for none.
    """

    query: Array
    key: Array
    value: Array
    key_padding_mask: BoolArray | None = None


class MultiHeadAttentionCache(NamedTuple):
    """What backward needs from forward."""

    inputs: tuple[Array, ...]  # (x,) (b, t, d_model) for self-attention; (query, key, value) for cross
    q: Array  # (b, h, t, dh)
    k: Array  # (b, h, s, dh)
    v: Array  # (b, h, s, dh)
    p: Array  # (b, h, t, s): the attention weights, before dropout
    drop: Array | None  # (b, h, t, s): dropout's scaled keep mask on p; None without dropout
    o: Array  # (b, t, d_model): the heads' outputs, concatenated
    given: int  # 0 for a bare x, else the length of the input tuple (dx is a tuple that long)


class _Config(NamedTuple):
    """The hyperparameters every function of the layer is bound with."""

    d_model: int
    heads: int
    causal: bool
    cross: bool
    kdim: int
    vdim: int
    dropout: float

    @property
    def packed(self) -> bool:
        """Whether ``in_proj_weight`` packs the three projections (PyTorch: ``kdim == vdim == d_model``)."""
        return self.kdim == self.vdim == self.d_model


# --- shapes and init ---------------------------------------------------------------------------------


def _input_shapes(in_shape: Any, cfg: _Config) -> tuple[Any, Any, Any]:
    """The ``init`` shapes of query, key and value (all the same for self-attention)."""
    if not cfg.cross:
        seq = in_shape[0] if in_shape and isinstance(in_shape[0], tuple) else in_shape
        if seq is not in_shape and len(in_shape) != 2:  # forward takes x or (x, key_padding_mask)
            raise ShapeError(
                _NAME, f"expected the input shape of x or of (x, key_padding_mask), got {in_shape!r}"
            )
        return seq, seq, seq
    if (
        not isinstance(in_shape, tuple)
        or len(in_shape) not in (3, 4)
        or not all(isinstance(shape, tuple) for shape in in_shape[:3])
    ):
        raise ShapeError(
            _NAME, f"expected the input shapes (query, key, value[, key_padding_mask]), got {in_shape!r}"
        )
    return in_shape[0], in_shape[1], in_shape[2]


def _shapes(in_shape: Any, /, *, cfg: _Config) -> tuple[Any, ArraySpecs]:
    """PyTorch's arrays for inputs ``(batch, time, d_model)`` (and keys and values of ``kdim``, ``vdim``)."""
    shapes = _input_shapes(in_shape, cfg)
    for what, shape, size in zip(_INPUTS, shapes, (cfg.d_model, cfg.kdim, cfg.vdim), strict=True):
        if not isinstance(shape, tuple) or len(shape) != 3 or shape[2] != size:
            name = "an input" if not cfg.cross else f"a {what}"
            raise ShapeError(_NAME, f"expected {name} shape (batch, time, {size}), got {shape!r}")
    d = cfg.d_model
    if cfg.packed:
        specs = {"in_proj_weight": ArraySpec((3 * d, d), glorot_uniform())}
    else:
        specs = {
            "q_proj_weight": ArraySpec((d, d), glorot_uniform()),
            "k_proj_weight": ArraySpec((d, cfg.kdim), glorot_uniform()),
            "v_proj_weight": ArraySpec((d, cfg.vdim), glorot_uniform()),
        }
    bound = 1.0 / math.sqrt(d)  # torch.nn.Linear's default for out_proj
    specs |= {
        "in_proj_bias": ArraySpec((3 * d,), zeros()),
        "out_proj.weight": ArraySpec((d, d), uniform(bound)),
        "out_proj.bias": ArraySpec((d,), zeros()),
    }
    return shapes[0], specs


# --- checking the inputs -------------------------------------------------------------------------------


def _split_input(x: Any, cfg: _Config) -> tuple[tuple[Any, ...], Any, int]:
    """``(arrays, key_padding_mask, given)``: ``(x,)`` or ``(query, key, value)``, the mask, the length."""
    if not cfg.cross:
        if not isinstance(x, tuple):
            return (x,), None, 0
        if len(x) != 2:
            raise ShapeError(_NAME, f"expected x or the tuple (x, key_padding_mask), got a tuple of {len(x)}")
        return (x[0],), x[1], 2
    if not isinstance(x, tuple) or len(x) not in (3, 4):
        got = f"a tuple of {len(x)}" if isinstance(x, tuple) else type(x).__name__
        raise ShapeError(
            _NAME,
            "cross-attention expects the tuple (query, key, value) or (query, key, value, "
            f"key_padding_mask), got {got}",
        )
    return tuple(x[:3]), (x[3] if len(x) == 4 else None), len(x)


def _check_array(a: object, what: str, size: int, like: Array) -> Array:
    if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != size:
        if not isinstance(a, np.ndarray):
            raise not_an_array(a, f"the {what}", _NAME)
        got = describe_shape(a.shape)
        raise ShapeError(_NAME, f"expected {what} of shape (batch, time, {size}), got {got}")
    check_same_dtype(a, like, _NAME, what)
    return a


def _checked_params(params: Params, cfg: _Config) -> Array:
    """``in_proj_bias``, after checking every param is what ``init`` makes (keys, shapes, one dtype)."""
    check_keys(params, _PACKED if cfg.packed else _SEPARATE, _NAME)
    d = cfg.d_model
    bias = check_param(params, "in_proj_bias", (3 * d,), _NAME)
    if cfg.packed:
        check_param(params, "in_proj_weight", (3 * d, d), _NAME, bias.dtype)
    else:
        check_param(params, "q_proj_weight", (d, d), _NAME, bias.dtype)
        check_param(params, "k_proj_weight", (d, cfg.kdim), _NAME, bias.dtype)
        check_param(params, "v_proj_weight", (d, cfg.vdim), _NAME, bias.dtype)
    check_param(params, "out_proj.weight", (d, d), _NAME, bias.dtype)
    check_param(params, "out_proj.bias", (d,), _NAME, bias.dtype)
    return bias


def _check_inputs(arrays: tuple[Any, ...], w: Array, cfg: _Config) -> tuple[Array, ...]:
    if not cfg.cross:
        return (_check_array(arrays[0], "input", cfg.d_model, w),)
    query, key, value = (
        _check_array(a, what, size, w)
        for a, what, size in zip(arrays, _INPUTS, (cfg.d_model, cfg.kdim, cfg.vdim), strict=True)
    )
    if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
        raise ShapeError(
            _NAME,
            "expected key and value of the same (batch, time) and the query's batch, got query "
            f"{describe_shape(query.shape)}, key {describe_shape(key.shape)}, "
            f"value {describe_shape(value.shape)}",
        )
    return query, key, value


def _allowed(mask: object, batch: int, t: int, s: int, causal: bool) -> BoolArray | None:
    """``(b or 1, 1, t, s)`` booleans, ``True`` where query ``i`` may see key ``j``; ``None``: all."""
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
            raise DTypeError(_NAME, f"expected a boolean key_padding_mask (True at padded keys), got {got}")
        if mask.shape != (batch, s):
            raise ShapeError(
                _NAME, f"expected key_padding_mask of shape ({batch}, {s}), got {describe_shape(mask.shape)}"
            )
    keys = None if mask is None else ~mask[:, None, None, :]
    if not causal:
        return keys
    lower = np.tri(t, s, dtype=np.bool_)[None, None]  # j <= i
    return lower if keys is None else lower & keys


# --- the projections ---------------------------------------------------------------------------------


def _heads(a: Array, heads: int) -> Array:
    """``(b, t, d) -> (b, h, t, d / h)``, contiguous (batched products run faster over contiguous heads)."""
    b, t, d = a.shape
    return np.ascontiguousarray(a.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3))


def _merge(a: Array) -> Array:
    """``(b, h, t, dh) -> (b, t, h dh)``: the inverse of :func:`_heads`."""
    b, h, t, dh = a.shape
    out: Array = a.transpose(0, 2, 1, 3).reshape(b, t, h * dh)
    return out


def _weights(params: Params, cfg: _Config) -> tuple[Array, Array, Array]:
    """``(W_q, W_k, W_v)``: row blocks of ``in_proj_weight`` (views), or the three separate weights."""
    if cfg.packed:
        w = params["in_proj_weight"]
        d = cfg.d_model
        return w[:d], w[d : 2 * d], w[2 * d :]
    return params["q_proj_weight"], params["k_proj_weight"], params["v_proj_weight"]


def _project(params: Params, inputs: tuple[Array, ...], cfg: _Config) -> tuple[Array, Array, Array]:
    """``(q, k, v)``, each ``(b, h, time, dh)``."""
    bias = params["in_proj_bias"]
    if not cfg.cross:
        (x,) = inputs
        b, t, _ = x.shape
        qkv = x @ params["in_proj_weight"].T
        qkv += bias
        # (b, t, 3, h, dh) -> (3, b, h, t, dh): one copy into contiguous heads for the batched products.
        q, k, v = np.ascontiguousarray(
            qkv.reshape(b, t, 3, cfg.heads, cfg.d_model // cfg.heads).transpose(2, 0, 3, 1, 4)
        )
        return q, k, v
    d = cfg.d_model
    out = []
    for i, (a, w) in enumerate(zip(inputs, _weights(params, cfg), strict=True)):
        z = a @ w.T
        z += bias[i * d : (i + 1) * d]
        out.append(_heads(z, cfg.heads))
    return out[0], out[1], out[2]


def _project_back(
    params: Params,
    cache: MultiHeadAttentionCache,
    dqkv_heads: tuple[Array, Array, Array],
    *,
    cfg: _Config,
    input_grad: bool,
) -> tuple[dict[str, Array], tuple[Array, ...] | None]:
    """The projections' parameter gradients and (with ``input_grad``) the inputs' gradients."""
    dq, dk, dv = dqkv_heads  # each (b, h, time, dh)
    if not cfg.cross:
        (x,) = cache.inputs
        b, t, _ = x.shape
        # (3, b, h, t, dh) -> (b, t, 3, h, dh) -> (b, t, 3 d_model): the layout of qkv in forward.
        dqkv = np.stack((dq, dk, dv)).transpose(1, 3, 0, 2, 4).reshape(b, t, 3 * cfg.d_model)
        grads = {
            "in_proj_weight": np.tensordot(dqkv, x, axes=((0, 1), (0, 1))),
            "in_proj_bias": _sum_rows(dqkv),
        }
        return grads, ((dqkv @ params["in_proj_weight"],) if input_grad else None)
    dz = [_merge(g) for g in (dq, dk, dv)]
    dw = [np.tensordot(g, a, axes=((0, 1), (0, 1))) for g, a in zip(dz, cache.inputs, strict=True)]
    names = ("in_proj_weight",) if cfg.packed else ("q_proj_weight", "k_proj_weight", "v_proj_weight")
    grads = dict(zip(names, [np.concatenate(dw)] if cfg.packed else dw, strict=True))
    grads["in_proj_bias"] = np.concatenate([_sum_rows(g) for g in dz])
    if not input_grad:
        return grads, None
    return grads, tuple(g @ w for g, w in zip(dz, _weights(params, cfg), strict=True))


def _sum_rows(a: Array) -> Array:
    out: Array = a.reshape(-1, a.shape[-1]).sum(axis=0)
    return out


# --- forward and backward ----------------------------------------------------------------------------


def _forward(
    params: Params, x_in: Any, ctx: Context = EVAL, /, *, cfg: _Config, **slips: object
) -> tuple[Any, MultiHeadAttentionCache]:
    """``y`` of shape ``(b, t, d_model)``; see the module docstring for the input forms."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_NAME, slips)
    w = _checked_params(params, cfg)
    arrays, mask, given = _split_input(x_in, cfg)
    inputs = _check_inputs(arrays, w, cfg)
    query, key = inputs[0], inputs[1 if cfg.cross else 0]
    b, t, _ = query.shape
    allowed = _allowed(mask, b, t, key.shape[1], cfg.causal)
    q, k, v = _project(params, inputs, cfg)
    drop = None
    if ctx.train and cfg.dropout > 0.0:
        drop = dropout_mask(ctx, (b, cfg.heads, t, key.shape[1]), cfg.dropout, query.dtype, _NAME)
    out, p = attention_forward(q, k, v, allowed, drop=drop)
    o = _merge(out)
    y = o @ params["out_proj.weight"].T
    y += params["out_proj.bias"]
    return y, MultiHeadAttentionCache(inputs, q, k, v, p, drop, o, given)


def _backpropagate(
    params: Params, cache: MultiHeadAttentionCache, dy: Array, cfg: _Config, input_grad: bool
) -> tuple[Any, Params]:
    check_cache(cache, MultiHeadAttentionCache, _NAME)
    if (
        cache.o.shape[2] != cfg.d_model
        or cache.q.shape[1] != cfg.heads
        or len(cache.inputs) != (3 if cfg.cross else 1)
    ):
        wrong_cache(cache, f"MultiHeadAttentionCache of this {_NAME}", _NAME)
    w = _checked_params(params, cfg)
    if cfg.cross and (cache.inputs[1].shape[2], cache.inputs[2].shape[2]) != (cfg.kdim, cfg.vdim):
        wrong_cache(cache, f"MultiHeadAttentionCache of this {_NAME}", _NAME)
    check_dy(dy, cache.o.shape, w.dtype, _NAME)
    grads: dict[str, Array] = {"out_proj.weight": np.tensordot(dy, cache.o, axes=((0, 1), (0, 1)))}
    grads["out_proj.bias"] = _sum_rows(dy)
    do = _heads(dy @ params["out_proj.weight"], cfg.heads)
    dq, dk, dv = attention_backward(cache.q, cache.k, cache.v, cache.p, do, drop=cache.drop)
    proj_grads, dinputs = _project_back(params, cache, (dq, dk, dv), cfg=cfg, input_grad=input_grad)
    grads = {**proj_grads, **grads}
    if dinputs is None or cache.given == 0:
        return (None if dinputs is None else dinputs[0]), grads
    return (*dinputs, None)[: cache.given], grads


def _backward(
    params: Params, cache: MultiHeadAttentionCache, dy: Array, /, *, cfg: _Config
) -> tuple[Any, Params]:
    """``dx`` shaped like the input and the gradient of every parameter; see the module docstring."""
    return _backpropagate(params, cache, dy, cfg, input_grad=True)


def _backward_params(params: Params, cache: MultiHeadAttentionCache, dy: Array, /, *, cfg: _Config) -> Params:
    return _backpropagate(params, cache, dy, cfg, input_grad=False)[1]


def multi_head_attention(
    d_model: int,
    heads: int,
    *,
    causal: bool = False,
    cross: bool = False,
    kdim: int | None = None,
    vdim: int | None = None,
    dropout: float = 0.0,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[MultiHeadAttentionCache]:
    """Multi-head attention with ``heads`` heads over ``d_model`` features (``nn.MultiheadAttention``).

    Args:
        d_model: the feature size of the queries and of the output; a multiple of ``heads``.
        heads: number of heads, each of size ``d_model // heads``.
        causal: whether query ``i`` sees only keys ``j <= i`` (a decoder's mask).
        cross: take ``(query, key, value[, key_padding_mask])`` instead of one ``x``.
        kdim: the keys' feature size (``cross`` only; ``d_model`` by default).
        vdim: the values' feature size (``cross`` only; ``d_model`` by default).
        dropout: the drop probability of each attention weight in training mode.
        dtype: dtype of the parameters (inputs must match it).

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> layer = multi_head_attention(8, 2, causal=True)
        >>> _, params = layer.init(fdl.random.key(0), (None, 5, 8))
        >>> sorted(params)
        ['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']
        >>> x = np.ones((3, 5, 8), np.float32)
        >>> y, _ = layer.forward(params, (x, np.zeros((3, 5), bool)))
        >>> y.shape, y.dtype
        ((3, 5, 8), dtype('float32'))
        >>> cross = multi_head_attention(8, 2, cross=True, kdim=6, vdim=6)
        >>> _, params = cross.init(fdl.random.key(0), ((None, 5, 8), (None, 7, 6), (None, 7, 6)))
        >>> memory = np.ones((3, 7, 6), np.float32)            # 7 keys for 5 queries
        >>> y, _ = cross.forward(params, (x, memory, memory))
        >>> y.shape
        (3, 5, 8)
    """
    d_model = positive_int(d_model, "d_model", _NAME)
    heads = positive_int(heads, "heads", _NAME)
    if d_model % heads:
        raise DomainError(_NAME, f"d_model ({d_model}) must be a multiple of heads ({heads})")
    causal, cross = flag(causal, "causal", _NAME), flag(cross, "cross", _NAME)
    if not cross and (kdim is not None or vdim is not None):
        raise DomainError(_NAME, "kdim and vdim are for cross-attention (cross=True)")
    rate = real(dropout, "dropout", _NAME)
    if not 0.0 <= rate <= 1.0:
        raise DomainError(_NAME, f"dropout (the drop probability) must be in [0, 1], got {dropout!r}")
    cfg = _Config(
        d_model,
        heads,
        bool(causal),
        bool(cross),
        d_model if kdim is None else positive_int(kdim, "kdim", _NAME),
        d_model if vdim is None else positive_int(vdim, "vdim", _NAME),
        rate,
    )
    return build(
        _NAME,
        _shapes,
        _forward,
        _backward,
        dtype=dtype,
        tuple_input=True,
        backward_params=_backward_params,
        reads_context=cfg.dropout > 0.0,
        cfg=cfg,
    )
