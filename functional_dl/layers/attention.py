"""Multi-head self-attention on ``(batch, time, d_model)``, as ``torch.nn.MultiheadAttention``.

With ``h`` heads of size ``dh = d_model / h``, ``x`` of shape ``(b, t, d_model)``::

    [q | k | v] = x @ in_proj_weight^T + in_proj_bias          (b, t, 3 d_model), split per head
    o_head      = softmax(q_head k_head^T / sqrt(dh) + mask) v_head   (b, h, t, dh)
    y           = concat_heads(o) @ out_proj.weight^T + out_proj.bias  (b, t, d_model)

The parameter keys and layouts are PyTorch's (``in_proj_weight`` ``(3 d_model, d_model)``,
``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``), so the ``state_dict`` of a
``MultiheadAttention(d_model, h, batch_first=True)`` maps onto these params unchanged; this layer
is its self-attention use, ``mha(x, x, x)``.

Input (the multi-input contract of :mod:`functional_dl.types`): ``x`` alone, or the tuple
``(x, key_padding_mask)`` with a boolean ``(b, t)`` mask that is ``True`` at padded keys (as
PyTorch's ``key_padding_mask``) or ``None``. ``causal=True`` lets query ``i`` see keys ``j <= i``
only (PyTorch's ``attn_mask`` of ``is_causal``). A masked key gets exactly zero weight and zero
gradient (see :mod:`functional_dl.layers._sdpa`). ``backward`` returns ``dx``, or ``(dx, None)``
for a tuple input (a mask has no gradient).
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
)
from functional_dl.errors import DomainError, DTypeError, ShapeError, describe_shape
from functional_dl.initializers import glorot_uniform, uniform, zeros
from functional_dl.layers._args import flag, positive_int
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.layers._sdpa import attention_backward, attention_forward
from functional_dl.types import EVAL, Array, BoolArray, Context, Layer, Params

__all__ = ["MultiHeadAttentionCache", "multi_head_attention"]

_NAME = "multi_head_attention"
_KEYS = frozenset({"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"})


class MultiHeadAttentionCache(NamedTuple):
    """What backward needs from forward."""

    x: Array  # (b, t, d_model)
    q: Array  # (b, h, t, dh)
    k: Array  # (b, h, t, dh)
    v: Array  # (b, h, t, dh)
    p: Array  # (b, h, t, t): the attention weights
    o: Array  # (b, t, d_model): the heads' outputs, concatenated
    tupled: bool  # whether the input was a tuple (x, mask), so dx is (dx, None)


def _shapes(in_shape: Any, /, *, d_model: int, heads: int, causal: bool) -> tuple[Any, ArraySpecs]:
    """The four arrays of ``torch.nn.MultiheadAttention``, for inputs ``(batch, time, d_model)``."""
    seq = in_shape[0] if in_shape and isinstance(in_shape[0], tuple) else in_shape
    if not isinstance(seq, tuple) or len(seq) != 3 or seq[2] != d_model:
        raise ShapeError(_NAME, f"expected an input shape (batch, time, {d_model}), got {seq!r}")
    bound = 1.0 / math.sqrt(d_model)  # torch.nn.Linear's default for out_proj
    specs = {
        "in_proj_weight": ArraySpec((3 * d_model, d_model), glorot_uniform()),
        "in_proj_bias": ArraySpec((3 * d_model,), zeros()),
        "out_proj.weight": ArraySpec((d_model, d_model), uniform(bound)),
        "out_proj.bias": ArraySpec((d_model,), zeros()),
    }
    return seq, specs


def _split_input(x: Any) -> tuple[Array, BoolArray | None, bool]:
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ShapeError(_NAME, f"expected x or the tuple (x, key_padding_mask), got a tuple of {len(x)}")
        return x[0], x[1], True
    return x, None, False


def _allowed(mask: BoolArray | None, batch: int, t: int, causal: bool) -> BoolArray | None:
    """``(b or 1, 1, t, t)`` booleans, ``True`` where query ``i`` may see key ``j``; ``None``: all."""
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
            raise DTypeError(_NAME, f"expected a boolean key_padding_mask (True at padded keys), got {got}")
        if mask.shape != (batch, t):
            raise ShapeError(
                _NAME, f"expected key_padding_mask of shape ({batch}, {t}), got {describe_shape(mask.shape)}"
            )
    keys = None if mask is None else ~mask[:, None, None, :]
    if not causal:
        return keys
    lower = np.tri(t, dtype=np.bool_)[None, None]
    return lower if keys is None else lower & keys


def _weights(params: Params, d_model: int) -> Array:
    """``in_proj_weight``, after checking the four params are what ``init`` makes."""
    check_keys(params, _KEYS, _NAME)
    w_in = check_param(params, "in_proj_weight", (3 * d_model, d_model), _NAME)
    check_param(params, "in_proj_bias", (3 * d_model,), _NAME, w_in.dtype)
    check_param(params, "out_proj.weight", (d_model, d_model), _NAME, w_in.dtype)
    check_param(params, "out_proj.bias", (d_model,), _NAME, w_in.dtype)
    return w_in


def _forward(
    params: Params, x_in: Any, ctx: Context = EVAL, /, *, d_model: int, heads: int, causal: bool
) -> tuple[Any, MultiHeadAttentionCache]:
    """``y`` of shape ``(b, t, d_model)`` from ``x`` or ``(x, key_padding_mask)``; see the module."""
    x, mask, tupled = _split_input(x_in)
    if type(x) is not np.ndarray or x.ndim != 3 or x.shape[2] != d_model:
        if not isinstance(x, np.ndarray):
            raise not_an_array(x, "the input", _NAME)
        if x.ndim != 3 or x.shape[2] != d_model:
            raise ShapeError(
                _NAME, f"expected input of shape (batch, time, {d_model}), got {describe_shape(x.shape)}"
            )
    w_in = _weights(params, d_model)
    check_same_dtype(x, w_in, _NAME)
    b, t, _ = x.shape
    allowed = _allowed(mask, b, t, causal)
    qkv = x @ w_in.T
    qkv += params["in_proj_bias"]
    # (b, t, 3, h, dh) -> (3, b, h, t, dh): q/k/v batched over (b, h) for matmul.
    # One copy into (3, b, h, t, dh) order: matmul over the strided views of qkv ran about twice
    # as slow as over contiguous heads, and the copy is small next to the products.
    q, k, v = np.ascontiguousarray(qkv.reshape(b, t, 3, heads, d_model // heads).transpose(2, 0, 3, 1, 4))
    out, p = attention_forward(q, k, v, allowed)
    o = out.transpose(0, 2, 1, 3).reshape(b, t, d_model)
    y = o @ params["out_proj.weight"].T
    y += params["out_proj.bias"]
    return y, MultiHeadAttentionCache(x, q, k, v, p, o, tupled)


def _sum_rows(a: Array) -> Array:
    out: Array = a.reshape(-1, a.shape[-1]).sum(axis=0)
    return out


def _backward(
    params: Params, cache: MultiHeadAttentionCache, dy: Array, /, *, d_model: int, heads: int, causal: bool
) -> tuple[Any, Params]:
    """``dx`` (or ``(dx, None)``) and the gradient of every parameter; see the module docstring."""
    check_cache(cache, MultiHeadAttentionCache, _NAME)
    x, o = cache.x, cache.o
    w_in = _weights(params, d_model)
    check_dy(dy, x.shape, w_in.dtype, _NAME)
    b, t, _ = x.shape
    d_out_w = np.tensordot(dy, o, axes=((0, 1), (0, 1)))
    do = (dy @ params["out_proj.weight"]).reshape(b, t, heads, d_model // heads).transpose(0, 2, 1, 3)
    dq, dk, dv = attention_backward(cache.q, cache.k, cache.v, cache.p, do)
    # (3, b, h, t, dh) -> (b, t, 3, h, dh) -> (b, t, 3 d_model): the layout of qkv in forward.
    dqkv = np.stack((dq, dk, dv)).transpose(1, 3, 0, 2, 4).reshape(b, t, 3 * d_model)
    grads = {
        "in_proj_weight": np.tensordot(dqkv, x, axes=((0, 1), (0, 1))),
        "in_proj_bias": _sum_rows(dqkv),
        "out_proj.weight": d_out_w,
        "out_proj.bias": _sum_rows(dy),
    }
    dx = dqkv @ params["in_proj_weight"]
    return ((dx, None) if cache.tupled else dx), grads


def multi_head_attention(
    d_model: int, heads: int, *, causal: bool = False, dtype: npt.DTypeLike = np.float32
) -> Layer[MultiHeadAttentionCache]:
    """Multi-head self-attention with ``heads`` heads over ``d_model`` features.

    Args:
        d_model: the feature size of the input and output; a multiple of ``heads``.
        heads: number of heads, each of size ``d_model // heads``.
        causal: whether query ``i`` sees only keys ``j <= i`` (a decoder's mask).
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
    """
    d_model = positive_int(d_model, "d_model", _NAME)
    heads = positive_int(heads, "heads", _NAME)
    if d_model % heads:
        raise DomainError(_NAME, f"d_model ({d_model}) must be a multiple of heads ({heads})")
    return build(
        _NAME,
        _shapes,
        _forward,
        _backward,
        dtype=dtype,
        tuple_input=True,
        d_model=d_model,
        heads=heads,
        causal=flag(causal, "causal", _NAME),
    )
