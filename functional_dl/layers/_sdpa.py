"""Scaled dot-product attention: the maths shared by the attention layers, batched over heads.

Shapes: ``q`` is ``(..., t, d)``, ``k`` is ``(..., s, d)``, ``v`` is ``(..., s, d_v)`` (the leading
axes are typically ``(batch, heads)``), ``allowed`` is a boolean array broadcastable to
``(..., t, s)`` (``True``: query ``i`` may attend to key ``j``) or ``None`` for no mask::

    scores = q k^T / sqrt(d)                      (..., t, s)
    p      = softmax over j of scores[..., i, j], with p = 0 exactly where not allowed
    out    = p v                                  (..., t, d_v)

Dropout on the weights (training mode) multiplies ``p`` by a scaled keep mask ``m`` of its shape
(entries ``0`` or ``1 / (1 - rate)``, :mod:`functional_dl.layers._dropout_mask`) before ``v``::

    out    = (p * m) v                            (m = 1 without dropout)

Backward, with ``dout = dL/dout``::

    dv = (p * m)^T dout  dp = (dout v^T) * m      ds = p * (dp - sum_j p * dp)
    dq = ds k / sqrt(d)  dk = ds^T q / sqrt(d)

A masked key has ``p = 0``, hence ``ds = 0``: it gets exactly zero weight, and exactly zero ``dk``
and ``dv`` from every query that may not see it, with or without dropout. A query that may see no
key at all (every key masked) outputs zeros and passes back zero gradient (PyTorch gives NaN
there). Every product is one ``np.matmul`` batched over the leading axes: no Python loop over heads.
"""

from __future__ import annotations

import numpy as np

from functional_dl.types import Array, BoolArray

__all__ = ["attention_backward", "attention_forward", "masked_softmax"]


def masked_softmax(scores: Array, allowed: BoolArray | None) -> Array:
    """Softmax over the last axis of ``scores`` with the entries where ``allowed`` is ``False`` set to 0.

    Masked scores become ``-inf`` before the max shift, so ``exp`` gives exactly 0 for them; a row
    with nothing allowed has a max of ``-inf``, which is replaced by 0 so the row is all zeros (and
    its sum of 0 by 1) instead of NaN.
    """
    if allowed is None:
        e: Array = np.exp(scores - scores.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        return e
    s = np.where(allowed, scores, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m[m == -np.inf] = 0  # m is a fresh array; rows with nothing allowed
    s -= m
    e = np.exp(s, out=s)
    z = e.sum(axis=-1, keepdims=True)
    z[z == 0] = 1
    e /= z
    return e


def attention_forward(
    q: Array, k: Array, v: Array, allowed: BoolArray | None, *, drop: Array | None = None
) -> tuple[Array, Array]:
    """``(out, p)``: ``out = (softmax(q k^T / sqrt(d)) * drop) v`` over the allowed keys, and ``p``.

    ``p`` is the softmax before dropout (what backward needs); ``drop`` is the scaled keep mask
    of ``p``'s shape, or ``None`` for no dropout.
    """
    scale = 1.0 / np.sqrt(q.shape[-1])
    scores = q @ np.swapaxes(k, -1, -2)
    scores *= scores.dtype.type(scale)  # a fresh array; the numpy scalar keeps float32 float32
    p = masked_softmax(scores, allowed)
    return (p if drop is None else p * drop) @ v, p


def attention_backward(
    q: Array, k: Array, v: Array, p: Array, dout: Array, *, drop: Array | None = None
) -> tuple[Array, Array, Array]:
    """``(dq, dk, dv)`` of :func:`attention_forward` given its weights ``p``, its ``drop`` and ``dout``."""
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    dv = np.swapaxes(p if drop is None else p * drop, -1, -2) @ dout
    dp = dout @ np.swapaxes(v, -1, -2)
    if drop is not None:
        dp *= drop  # dp is a fresh array: now the gradient of p before dropout
    dp -= (p * dp).sum(axis=-1, keepdims=True)
    dp *= p  # now ds, the gradient of the scores
    dq = dp @ k
    dq *= scale
    dk = np.swapaxes(dp, -1, -2) @ q
    dk *= scale
    return dq, dk, dv
