"""A user's sweep and data-parallel run: must type-check under ``mypy --strict --disallow-any-expr``."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

import functional_dl as fdl
from functional_dl import distributed, losses, optim, train
from functional_dl import layers as L
from functional_dl.combinators import SerialCache

Result = train.FitResult[object]


def run(hparams: distributed.Hparams, *, x: fdl.Array, y: fdl.IntArray) -> Result:
    net: fdl.Layer[SerialCache] = fdl.serial(L.dense(8), L.relu(), L.dense(2))
    _, params = net.init(fdl.random.key(int(hparams["seed"])), (None, 3))
    opt = optim.adam(float(hparams["lr"]))
    start = train.init_train_state(opt, params)
    return train.fit(net, losses.softmax_cross_entropy, opt, start, (x, y), key=fdl.random.key(0),
                     epochs=1, batch_size=4, progress="none")  # fmt: skip


def main() -> str:
    x = np.zeros((8, 3), np.float32)
    y = np.zeros(8, np.int64)
    trials = distributed.grid(lr=[0.01, 0.1], seed=[0, 1])
    with ProcessPoolExecutor(2) as pool:
        results = distributed.sweep(partial(run, x=x, y=y), trials, pool)
    best: float = min(r.final["loss"] for r in results)
    with distributed.local_cluster(2) as client:
        first = run(trials[0].hparams, x=x, y=y)
        net = fdl.serial(L.dense(2))
        _, params = net.init(fdl.random.key(0), (None, 3))
        opt = optim.adam(0.01)
        start = train.init_train_state(opt, params)
        result = distributed.fit(net, losses.softmax_cross_entropy, opt, start, (x, y), client=client,
                                 key=fdl.random.key(1), epochs=1, batch_size=4)  # fmt: skip
        steps: int = result.train_state.step + first.train_state.step
    return distributed.format_table(results) + f"\n{best} {steps}"


if __name__ == "__main__":
    print(main())
