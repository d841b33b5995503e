"""A research script as a user writes it: must type-check under ``mypy --strict``."""

from __future__ import annotations

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.combinators import SerialCache
from functional_dl.optim import OptimizerState


def train_once(x: fdl.Array, y: fdl.Array) -> float:
    key = fdl.random.key(0)
    net: fdl.Layer[SerialCache] = fdl.serial(L.dense(20), L.relu(), L.dense(1))
    out_shape, params = net.init(key, (None, 30))
    logits, cache = net.forward(params, x)
    loss, dlogits = fdl.losses.sigmoid_binary_cross_entropy(logits, y)
    dx, grads = net.backward(params, cache, dlogits)
    opt = fdl.optim.sgd(0.05)
    state: OptimizerState[object] = opt.init(params)
    state, params = opt.update(state, grads)
    norm: float = fdl.params.global_norm(grads)
    shape: fdl.Shape = out_shape
    return float(loss) + norm + len(shape) + dx.size


if __name__ == "__main__":
    print(train_once(np.zeros((4, 30), np.float32), np.zeros((4, 1), np.float32)))
