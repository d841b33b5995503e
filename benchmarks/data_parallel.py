"""One epoch of LeNet: plain ``train.fit`` against ``distributed.fit`` on 1 and 2 Dask workers.

The network: input ``(64, 1, 28, 28)``, conv 32 3x3 padding 1, relu, max pool 2, conv 64 3x3
padding 1, relu, max pool 2, flatten, dense 10; softmax cross-entropy; Adam; float32; synthetic data
(``--samples`` images, so ``samples / 64`` steps per epoch). Every process uses one BLAS thread: the
driver, and each worker of a ``LocalCluster`` of 2 worker processes on 127.0.0.1. "1 worker" is one
share per batch (the second worker idles); "2 workers" cuts every batch in two.

Reported per configuration: the median wall time of an epoch over ``--reps`` repetitions (the
configurations alternate within each repetition, so a noisy neighbour slows all of them alike),
the speedup over plain ``fit``, the per-step overhead of going through the cluster (1 worker minus
plain, divided by the steps: scheduling, serialisation and transfers), and the bytes each worker
receives and sends per step (the params in, the weighted grads out: about twice the parameter
bytes). See ``benchmarks/DISTRIBUTED.md`` for the numbers and the cost model.

    python benchmarks/data_parallel.py                 # 3 repetitions of one 1024-sample epoch
    python benchmarks/data_parallel.py --smoke         # a quick check that it runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

BATCH = 64
TINY_STEPS = 16


def _one_blas_thread() -> None:
    # Before NumPy loads BLAS (hence the imports inside functions); the Dask workers inherit it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def lenet() -> Any:
    import functional_dl as fdl
    from functional_dl import layers as L

    return fdl.serial(
        L.conv2d(32, 3, padding=1), L.relu(), L.max_pool2d(2),
        L.conv2d(64, 3, padding=1), L.relu(), L.max_pool2d(2),
        L.flatten(), L.dense(10),
    )  # fmt: skip


def synthetic(samples: int) -> tuple[Any, Any]:
    import numpy as np

    import functional_dl as fdl

    x = fdl.random.normal(fdl.random.key(0), (samples, 1, 28, 28), np.float32)
    y = fdl.random.permutation(fdl.random.key(1), samples) % 10
    return x, y


def alternate(runs: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Wall times of each run, ``reps`` times, the runs taking turns within each repetition."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1024, help="images per epoch (default 1024)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--smoke", action="store_true", help="128 samples, 1 repetition")
    args = parser.parse_args()
    _one_blas_thread()
    import functional_dl as fdl
    from functional_dl import distributed, losses, optim, train

    samples, reps = (128, 1) if args.smoke else (args.samples, args.reps)
    steps = -(-samples // BATCH)

    net = lenet()
    _, params = net.init(fdl.random.key(2), (None, 1, 28, 28))
    opt = optim.adam(1e-3)
    start = train.init_train_state(opt, params)
    data = synthetic(samples)
    loss = losses.softmax_cross_entropy
    kw: dict[str, Any] = {"key": fdl.random.key(3), "epochs": 1, "batch_size": BATCH, "progress": "none"}
    param_bytes = sum(p.nbytes for p in params.values())

    with distributed.local_cluster(2) as client:
        # Warm up: imports and first-touch allocations in every process.
        warm = {**kw, "batch_size": 32}
        train.fit(net, loss, opt, start, synthetic(BATCH), **warm)
        distributed.fit(net, loss, opt, start, synthetic(BATCH), client=client, **warm)
        on_cluster = partial(distributed.fit, net, loss, opt, start, client=client)
        times = alternate(
            {
                "plain fit": partial(train.fit, net, loss, opt, start, data, **kw),
                "1 worker": partial(on_cluster, data, shares=1, **kw),
                "2 workers": partial(on_cluster, data, shares=2, **kw),
            },
            reps,
        )
        # The fixed cost alone: steps of one sample, where there is next to nothing to compute.
        tiny, one = synthetic(TINY_STEPS), {**kw, "batch_size": 1}
        floor = alternate(
            {
                "plain fit": partial(train.fit, net, loss, opt, start, tiny, **one),
                "1 worker": partial(on_cluster, tiny, shares=1, **one),
            },
            reps,
        )

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"LeNet, {samples} samples = {steps} steps of {BATCH}, float32, Adam, 1 BLAS thread per process")
    print(f"params: {sum(p.size for p in params.values())} ({param_bytes / 1e3:.0f} kB)")
    print(f"{'':>10}  {'epoch':>8}  {'per step':>9}  {'speedup':>7}")
    for name, t in med.items():
        print(f"{name:>10}  {t:7.2f}s  {1e3 * t / steps:7.1f}ms  {med['plain fit'] / t:6.2f}x")
    overhead = (med["1 worker"] - med["plain fit"]) / steps
    print(f"overhead per step (1 worker - plain): {1e3 * overhead:.1f} ms")
    fixed = (statistics.median(floor["1 worker"]) - statistics.median(floor["plain fit"])) / TINY_STEPS
    print(f"overhead per step at batch 1 (1 worker - plain, {TINY_STEPS} steps): {1e3 * fixed:.1f} ms")
    print(f"bytes per worker per step: {2 * param_bytes / 1e3:.0f} kB (params in, weighted grads out)")
    print("timings: " + "; ".join(f"{k}: {', '.join(f'{v:.2f}' for v in t)}" for k, t in times.items()))


if __name__ == "__main__":
    main()
