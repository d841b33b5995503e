"""The inverted-dropout mask, shared by :mod:`~functional_dl.layers.dropout` and the attention weights.

For a drop probability ``rate`` and ``u ~ U[0, 1)`` drawn from the call's key::

    mask = (u >= rate) / (1 - rate)        (all zeros when rate = 1)

so ``x * mask`` keeps each entry with probability ``1 - rate`` and has the expectation of ``x``.
The draws are made in float32 whatever the dtype of ``x``, so one key gives one mask in float32
and float64. When ``x`` is rows ``start, ..., start + len(x) - 1`` of a batch of ``total`` rows
split across processes (``Context.batch_rows``), the draws are made for the whole batch and those
rows kept, so a sample's mask depends on its position in the batch only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl import random
from functional_dl.errors import LayerError, ShapeError
from functional_dl.types import Array, Context, Key

__all__ = ["dropout_mask", "require_key"]


def _uniform_rows(key: Key, shape: tuple[int, ...], rows: tuple[int, int] | None, layer: str) -> Array:
    """Uniform draws for ``shape``, or for rows ``start:start + shape[0]`` of a ``(total, ...)`` batch."""
    if rows is None:
        return random.uniform(key, shape, np.float32)
    start, total = rows
    if not 0 <= start <= total - shape[0]:
        raise ShapeError(
            layer,
            f"batch_rows {rows} do not hold the {shape[0]} rows of the input "
            "(need 0 <= start <= total - rows)",
        )
    return random.uniform(key, (total, *shape[1:]), np.float32)[start : start + shape[0]]


def require_key(ctx: Context, layer: str) -> Key:
    """``ctx.key``, checked: a :class:`LayerError` (training mode needs a key) if it is ``None``.

    Anything else that is no key (``Context(key=0)``) is a :class:`~functional_dl.errors.KeyTypeError`.
    """
    if ctx.key is None:
        raise LayerError(
            layer,
            "training mode needs a random key: pass Context(train=True, key=...) "
            "(functional_dl.random.key), or use train=False for evaluation",
        )
    return random.check_key(ctx.key)


def dropout_mask(
    ctx: Context, shape: tuple[int, ...], rate: float, dtype: npt.DTypeLike, layer: str
) -> Array:
    """The scaled keep mask ``(u >= rate) / (1 - rate)`` of ``shape`` and ``dtype``, drawn from ``ctx.key``.

    Raises:
        LayerError: ``ctx.key`` is ``None``.
        KeyTypeError: ``ctx.key`` is not a ``Key`` (an int seed).
        ShapeError: ``ctx.batch_rows`` that do not hold ``shape[0]`` rows.
    """
    keep = _uniform_rows(require_key(ctx, layer), shape, ctx.batch_rows, layer) >= np.float32(rate)
    scale = 1.0 / (1.0 - rate) if rate < 1.0 else 0.0
    mask: Array = keep.astype(dtype)
    mask *= scale  # a fresh array of the wanted dtype; the Python float keeps that dtype
    return mask
