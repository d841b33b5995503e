"""Mini-batches drawn from a key: the same key gives the same batches, in any process."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from functional_dl.errors import ShapeError
from functional_dl.random import permutation
from functional_dl.train.step import Batch
from functional_dl.types import Key

__all__ = ["minibatches", "num_batches"]


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

    Yields:
        ``(x_batch, y_batch)`` pairs.

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
    if batch_size <= 0:
        raise ValueError(f"minibatches: batch_size must be positive, got {batch_size}")
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    if key is None:
        raise ValueError("minibatches: shuffle=True needs a key")
    order = permutation(key, n)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield np.take(x, idx, axis=0), np.take(y, idx, axis=0)
