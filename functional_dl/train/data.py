"""Mini-batches drawn from a key: the same key gives the same batches, in any process."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np

from functional_dl._arraylike import as_numeric
from functional_dl._fn import pipe
from functional_dl.errors import DomainError, KeyTypeError, ShapeError
from functional_dl.random import permutation
from functional_dl.train.step import Batch
from functional_dl.types import Array, IntArray, Key

__all__ = ["as_batch", "check_count", "minibatches", "num_batches"]


def check_count(where: str, name: str, value: object, minimum: int) -> int:
    """``value`` when it is an ``int`` of at least ``minimum``; else :class:`DomainError`.

    ``fit(batch_size=0)`` or ``epochs=-1`` would otherwise divide by zero or run nothing at all.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise DomainError(where, f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _as_array(where: str, name: str, value: object) -> Array:
    arr: Array = as_numeric(value, name, where)  # the library's array-like rule
    if arr.ndim == 0:
        raise ShapeError(where, f"{name} must have a sample axis, got a 0-d array")
    return arr


def as_batch(where: str, data: object) -> Batch:
    """``(x, y)`` as NumPy arrays by the library's array-like rule (:mod:`functional_dl._arraylike`).

    Raises:
        DomainError: ``data`` is not a pair.
        ShapeError: a ragged or 0-d ``x``/``y``, or different numbers of samples.
        DTypeError: a non-numeric ``x``/``y`` (strings, objects, complex numbers) or a masked array.
    """
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise DomainError(where, f"data must be a pair (x, y), got a {type(data).__name__}")
    x, y = _as_array(where, "x", data[0]), _as_array(where, "y", data[1])
    if x.shape[0] != y.shape[0]:
        raise ShapeError(where, f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    return x, y


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`minibatches` yields for ``n`` samples.

    Example:
        >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
        (3, 2)
    """
    return n // batch_size if drop_last else -(-n // batch_size)


def minibatches(
    key: Key | None, data: Batch, batch_size: int, shuffle: bool = True, drop_last: bool = False
) -> Iterator[Batch]:
    """Split ``(x, y)`` into batches of ``batch_size`` along the first axis.

    With ``shuffle``, the order is the permutation drawn from ``key``: pass a new key per epoch
    (``random.fold_in(key, epoch)``, as :func:`~functional_dl.train.fit` does) to reshuffle each
    epoch reproducibly. Without it, batches are consecutive slices (views, no copies).

    Args:
        key: the key of this epoch's permutation (unused, and may be ``None``, without shuffle).
        data: ``(x, y)`` with the same length ``n`` along axis 0.
        batch_size: samples per batch; the last batch is smaller unless ``drop_last``.
        shuffle: draw a random order from ``key``.
        drop_last: skip a final batch smaller than ``batch_size``.

    Returns:
        A lazy iterator of ``(x_batch, y_batch)`` pairs: the batch starts mapped to their index
        blocks, mapped to the batches. Bad arguments raise at the call, not at the first batch.

    Raises:
        KeyTypeError: with ``shuffle``, a ``key`` that is no ``Key`` (``None``, an int seed).

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> x, y = np.arange(5.0).reshape(5, 1), np.arange(5)
        >>> [b[1].tolist() for b in minibatches(random.key(0), (x, y), 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
    """
    x, y = data
    n = x.shape[0]
    if y.shape[0] != n:
        raise ShapeError("minibatches", f"x has {n} samples but y has {y.shape[0]}")
    check_count("minibatches", "batch_size", batch_size, 1)
    starts = range(0, n - n % batch_size if drop_last else n, batch_size)
    # Each batch's index is a slice, or a slice of the shuffled order (a view): one call per batch.
    # toolz's partition_all over the order's elements gives the same blocks, but it boxes every
    # index into a Python object and back, which triples the cost of batching.
    if not shuffle:
        return pipe(
            starts, partial(map, partial(_slice_at, batch_size)), partial(map, partial(_slice_batch, data))
        )
    if key is None:
        raise KeyTypeError(
            "minibatches: shuffle=True expected a Key from fdl.random.key(seed), got None "
            "(pass shuffle=False to keep the order)"
        )
    return pipe(
        starts,
        partial(map, partial(_block_at, permutation(key, n), batch_size)),
        partial(map, partial(_take_batch, data)),
    )


def _slice_at(batch_size: int, start: int, /) -> slice:
    return slice(start, start + batch_size)


def _block_at(order: IntArray, batch_size: int, start: int, /) -> IntArray:
    return order[start : start + batch_size]


def _slice_batch(data: Batch, index: slice, /) -> Batch:
    return data[0][index], data[1][index]  # views, no copies


def _take_batch(data: Batch, index: IntArray, /) -> Batch:
    return np.take(data[0], index, axis=0), np.take(data[1], index, axis=0)
