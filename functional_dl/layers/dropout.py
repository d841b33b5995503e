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

from functional_dl import random
from functional_dl._checks import check_cache, check_dy, check_float, check_no_params
from functional_dl.errors import DomainError, LayerError, ShapeError
from functional_dl.layers._args import real
from functional_dl.layers._builder import build, keeps_shape
from functional_dl.types import EMPTY, EVAL, Array, Context, Key, Layer, Params

__all__ = ["DropoutCache", "dropout"]


class DropoutCache(NamedTuple):
    """What backward needs from forward."""

    mask: Array | None  # shape of x: 0 or 1 / (1 - rate); None when the layer was the identity
    shape: tuple[int, ...]  # shape of x, to check dy
    dtype: np.dtype[Any]  # dtype of x, which dy must have


def _uniform_rows(key: Key, shape: tuple[int, ...], rows: tuple[int, int] | None) -> Array:
    """Uniform draws for ``shape``, or for rows ``start:start + shape[0]`` of a ``(total, ...)`` batch."""
    # Draw in float32 whatever the input dtype, so one key gives one mask for float32 and float64.
    if rows is None:
        return random.uniform(key, shape, np.float32)
    start, total = rows
    if not 0 <= start <= total - shape[0]:
        raise ShapeError(
            "dropout",
            f"batch_rows {rows} do not hold the {shape[0]} rows of the input "
            "(need 0 <= start <= total - rows)",
        )
    return random.uniform(key, (total, *shape[1:]), np.float32)[start : start + shape[0]]


def _forward(params: Params, x: Array, ctx: Context = EVAL, /, *, rate: float) -> tuple[Array, DropoutCache]:
    """``y = x * mask / (1 - rate)`` in training mode (mask drawn from ``ctx.key``), else ``y = x``.

    Args:
        params: must be empty.
        x: input of any shape ``(batch, ...)``.
        ctx: ``ctx.train`` selects training mode, which needs ``ctx.key``; ``ctx.batch_rows``
            places ``x`` in a larger batch (see the module docstring).
        rate: probability of dropping each entry, in ``[0, 1]``.

    Raises:
        LayerError: training mode with ``ctx.key`` of ``None``.
        ShapeError: ``ctx.batch_rows`` that do not hold ``len(x)`` rows.
    """
    check_no_params(params, "dropout")
    check_float(x, "dropout")
    if not ctx.train or rate == 0.0:
        return x, DropoutCache(None, x.shape, x.dtype)
    if ctx.key is None:
        raise LayerError(
            "dropout",
            "training mode needs a random key: pass Context(train=True, key=...) "
            "(functional_dl.random.key), or use train=False for evaluation",
        )
    keep = _uniform_rows(ctx.key, x.shape, ctx.batch_rows) >= np.float32(rate)
    scale = 1.0 / (1.0 - rate) if rate < 1.0 else 0.0
    mask: Array = keep.astype(x.dtype)
    mask *= scale  # fresh array of x's dtype; the Python float keeps that dtype
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
