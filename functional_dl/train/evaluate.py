"""Evaluation in inference mode: loss and metrics of a network over a whole data set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from functional_dl.losses import LossFn
from functional_dl.train.data import as_batch, minibatches
from functional_dl.train.step import Batch, Logs, Metric
from functional_dl.types import EMPTY, Array, Buffers, Context, Layer, Params

__all__ = ["evaluate", "predict"]


def predict(
    net: Layer[Any], params: Params, x: Array, *, buffers: Buffers = EMPTY, batch_size: int | None = None
) -> Array:
    """The network's outputs on ``x`` in evaluation mode (no dropout, running statistics).

    Args:
        net: the network.
        params: its params.
        x: inputs ``(n, ...)``.
        buffers: its non-trained buffers.
        batch_size: evaluate in slices of this many samples to bound memory (default: all at once).

    Returns:
        ``(n, ...)`` outputs, the same as one forward pass over all of ``x``.
    """
    ctx = Context(train=False, key=None, buffers=buffers)
    if batch_size is None or batch_size >= x.shape[0]:
        return net.forward(params, x, ctx)[0]
    dummy = np.zeros(x.shape[0], dtype=np.int8)
    outs = [net.forward(params, xb, ctx)[0] for xb, _ in minibatches(None, (x, dummy), batch_size, False)]
    return np.concatenate(outs, axis=0)


def evaluate(
    net: Layer[Any],
    loss: LossFn,
    params: Params,
    data: Batch,
    *,
    buffers: Buffers = EMPTY,
    batch_size: int | None = None,
    metrics: Mapping[str, Metric] | None = None,
) -> Logs:
    """Loss and metrics of ``net`` on ``data = (x, y)`` in evaluation mode.

    The loss and every metric are computed once on the predictions for the whole set, so they are
    exact (not averages of per-batch values).

    Returns:
        ``{"loss": ..., **{name: metric(pred, y)}}`` as Python floats.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, losses, metrics, random, serial
        >>> net = serial(L.dense(1))
        >>> _, params = net.init(random.key(0), (None, 2))
        >>> logs = evaluate(net, losses.sigmoid_binary_cross_entropy, params,
        ...                 (np.ones((4, 2), np.float32), np.ones((4, 1))), metrics={"acc": metrics.accuracy})
        >>> sorted(logs)
        ['acc', 'loss']
    """
    x, y = as_batch("evaluate", data)
    pred = predict(net, params, x, buffers=buffers, batch_size=batch_size)
    value, _ = loss(pred, y)
    return {"loss": float(value), **{name: float(fn(pred, y)) for name, fn in (metrics or {}).items()}}
