"""The pure arithmetic of data parallelism: split a batch in shares, compute a share, combine two.

Nothing here knows about processes: these functions are what each worker runs, and the tests run
them in one process too. A global batch of ``n`` rows is cut into contiguous shares
``[start_i, stop_i)``; share ``i`` of ``n_i`` rows contributes with weight ``w_i = n_i / n``::

    loss  = sum_i w_i loss_i          (loss_i the mean over share i, so loss is the mean over the batch)
    grads = sum_i w_i grads_i         (the gradient of that mean)
    pred  = concat_i pred_i           (in batch order, for metrics)

which is the single-process value up to the rounding of the sums (exactly it for one share, where
``w = 1``). Buffers are combined with the same weights; see :mod:`functional_dl.distributed.data_parallel`
for what that means for batch norm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from functional_dl.errors import DomainError
from functional_dl.losses import LossFn
from functional_dl.train.step import Batch, value_and_grad
from functional_dl.types import Array, Buffers, Context, IntArray, Key, Layer, Params

__all__ = ["Share", "ShareResult", "combine", "run_share", "share_bounds", "tree_combine"]


class Share(NamedTuple):
    """Which rows of a step's batch one worker computes, and how.

    Attributes:
        ids: the sample indices of this share, ``(n_i,)``, into the whole training set.
        rows: ``(start, total)``: this share is rows ``start, ..., start + n_i - 1`` of a global batch
            of ``total`` rows; it weights the result by ``n_i / total`` and places dropout's masks.
        key: the step's key.
        train: training mode.
    """

    ids: IntArray
    rows: tuple[int, int]
    key: Key | None
    train: bool


class ShareResult(NamedTuple):
    """One share's contribution, already weighted by ``w_i = n_i / n`` (so combining is a sum).

    Attributes:
        loss: ``w_i * loss_i``.
        grads: ``w_i * grads_i``, the keys and shapes of the params.
        buffers: ``w_i * buffers_i``, the buffers after the share's pass (empty if the net has none).
        pred: the share's predictions ``(n_i, ...)``, unweighted.
    """

    loss: float
    grads: dict[str, Array]
    buffers: dict[str, Array]
    pred: Array


def share_bounds(n: int, shares: int) -> tuple[tuple[int, int], ...]:
    """Cut ``n`` rows into ``shares`` contiguous ``(start, stop)`` ranges whose sizes differ by at most one.

    Shares beyond ``n`` rows would be empty and are dropped, so a batch smaller than the number of
    workers still works.

    Example:
        >>> share_bounds(10, 3)
        ((0, 4), (4, 7), (7, 10))
        >>> share_bounds(2, 3)
        ((0, 1), (1, 2))
    """
    if shares < 1:
        raise DomainError("share_bounds", f"shares must be >= 1, got {shares}")
    k = max(1, min(shares, n))
    # Sizes differ by at most one, the larger shares first (numpy.array_split's cut).
    stops = np.cumsum([n // k + (1 if i < n % k else 0) for i in range(k)]).tolist()
    return tuple(zip([0, *stops[:-1]], stops, strict=True))


def _scaled(mapping: Buffers, w: float) -> dict[str, Array]:
    # w == 1.0 for a single share: x * 1.0 is x exactly, so one share reproduces fit bit for bit.
    return {k: v * v.dtype.type(w) for k, v in mapping.items()}


def run_share(
    params: Params, buffers: Buffers, data: Batch, share: Share, *, net: Layer[Any], loss: LossFn
) -> ShareResult:
    """Loss, grads, buffers and predictions of the rows ``share.ids`` of ``data``, weighted for combining.

    Args:
        params: the current params.
        buffers: the buffers before the step.
        data: the whole training set ``(x, y)`` (each worker holds it once).
        share: which rows, where they sit in the batch, the step's key and mode.
        net: the network.
        loss: the loss, a mean over the batch.
    """
    x, y = data
    ctx = Context(train=share.train, key=share.key, buffers=buffers, batch_rows=share.rows)
    xs, ys = np.take(x, share.ids, axis=0), np.take(y, share.ids, axis=0)
    out = value_and_grad(net, loss)(params, xs, ys, ctx)
    w = len(share.ids) / share.rows[1]
    weighted_buffers = _scaled(out.buffers, w) if buffers else {}
    return ShareResult(out.loss * w, _scaled(out.grads, w), weighted_buffers, out.pred)


def combine(a: ShareResult, b: ShareResult) -> ShareResult:
    """Two adjacent shares' results as one: sums of the weighted values, predictions concatenated."""
    return ShareResult(
        a.loss + b.loss,
        {k: g + b.grads[k] for k, g in a.grads.items()},
        {k: v + b.buffers[k] for k, v in a.buffers.items()},
        np.concatenate([a.pred, b.pred]),
    )


def tree_combine(results: Sequence[ShareResult]) -> ShareResult:
    """Combine shares pairwise, neighbours first, as the cluster does (the same sums in the same order)."""
    level = list(results)
    while len(level) > 1:
        level = [
            combine(*level[i : i + 2]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)
        ]
    return level[0]
