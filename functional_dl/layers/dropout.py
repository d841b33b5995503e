"""Dropout: zero each entry with probability ``rate`` at training time, identity at evaluation.

``rate`` is the probability of *dropping* an entry, as in ``torch.nn.Dropout(p)`` (not the keep
probability of some older libraries). Scaling is "inverted": kept entries are divided by
``1 - rate`` during training, so the expected output equals the input and evaluation needs no
rescaling::

    train:  m_i ~ Bernoulli(1 - rate),  y = x * m / (1 - rate),   dx = dy * m / (1 - rate)
    eval:   y = x,                                                dx = dy

The mask is drawn from ``ctx.key`` (the key of this call, which combinators split per layer): the
same key gives the same mask, bit for bit, whatever the dtype of ``x``. Training mode without a key
is an error rather than a silent fallback to some hidden random state.

When ``x`` is one share of a batch split across processes (``ctx.batch_rows = (start, total)``,
set by :mod:`functional_dl.distributed`), the mask is drawn for the whole ``(total, ...)`` batch and
rows ``start, ..., start + len(x) - 1`` are kept: a sample's mask depends on its position in the
batch only, so data-parallel training draws the masks of single-process training whatever the
number of workers. (Each share draws the whole batch's numbers; drawing is cheap next to the
layers around a dropout.)
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_float,
    check_no_params,
    refuse_forward_keywords,
)
from functional_dl.errors import DomainError
from functional_dl.layers._args import real
from functional_dl.layers._builder import build, keeps_shape
from functional_dl.layers._dropout_mask import dropout_mask
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

__all__ = ["DropoutCache", "dropout"]


class DropoutCache(NamedTuple):
    """What backward needs from forward."""

    mask: Array | None  # shape of x: 0 or 1 / (1 - rate); None when the layer was the identity
    shape: tuple[int, ...]  # shape of x, to check dy
    dtype: np.dtype[Any]  # dtype of x, which dy must have


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, rate: float, **slips: object
) -> tuple[Array, DropoutCache]:
    """``y = x * mask / (1 - rate)`` in training mode (mask drawn from ``ctx.key``), else ``y = x``.

    Args:
        params: must be empty.
        x: input of any shape ``(batch, ...)``.
        ctx: ``ctx.train`` selects training mode, which needs ``ctx.key``; ``ctx.batch_rows``
            places ``x`` in a larger batch (see the module docstring).
        rate: probability of dropping each entry, in ``[0, 1]``.
        **slips: keywords given by mistake (``train=True``), refused with an ``ArgumentError``.

    Raises:
        ArgumentError: keywords besides ``rate`` (``train=True``: pass a ``Context``).
        LayerError: training mode with ``ctx.key`` of ``None``.
        KeyTypeError: training mode with a ``ctx.key`` that is no ``Key`` (an int seed).
        ShapeError: ``ctx.batch_rows`` that do not hold ``len(x)`` rows.
    """
    if slips:
        refuse_forward_keywords("dropout", slips)
    check_no_params(params, "dropout")
    check_float(x, "dropout")
    if not ctx.train or rate == 0.0:
        return x, DropoutCache(None, x.shape, x.dtype)
    mask = dropout_mask(ctx, x.shape, rate, x.dtype, "dropout")
    return x * mask, DropoutCache(mask, x.shape, x.dtype)


def _backward(params: Params, cache: DropoutCache, dy: Array, /) -> tuple[Array, Params]:
    """``dx = dy * mask / (1 - rate)`` (the same mask as forward), or ``dx = dy`` in evaluation."""
    check_cache(cache, DropoutCache, "dropout")
    check_no_params(params, "dropout")
    check_dy(dy, cache.shape, cache.dtype, "dropout")
    if cache.mask is None:
        return dy, EMPTY
    return dy * cache.mask, EMPTY


def dropout(rate: float) -> Layer[DropoutCache]:
    """Dropout with drop probability ``rate`` (as ``torch.nn.Dropout(p=rate)``).

    Args:
        rate: probability of zeroing each entry at training time, ``0 <= rate <= 1``; ``rate=1``
            zeroes everything (as PyTorch does).

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> layer = dropout(0.5)
        >>> x = np.ones((2, 4), np.float32)
        >>> y, _ = layer.forward({}, x)                      # evaluation: the identity
        >>> bool((y == x).all())
        True
        >>> ctx = fdl.Context(train=True, key=fdl.random.key(0))
        >>> y, _ = layer.forward({}, x, ctx)                 # training: zeros and 2.0s
        >>> sorted(set(y.ravel().tolist())) == [0.0, 2.0]
        True
    """
    p = real(rate, "rate", "dropout")
    if not 0.0 <= p <= 1.0:
        raise DomainError("dropout", f"rate (the drop probability) must be in [0, 1], got {rate!r}")
    return build("dropout", keeps_shape, partial(_forward, rate=p), _backward, reads_context=True)
