"""Time one training step of a 40-100-100-10 MLP: functional_dl vs PyTorch CPU vs plain NumPy.

One step is: forward, softmax cross-entropy (mean over the batch of 100), backward, Adam update
(lr 1e-3), all in float32. Each framework runs in its own fresh subprocess (so imports, allocator
state and peak memory are its own), the order rotates between repetitions, and every worker
reports the median of its per-step times after a warm-up. The table shows, per framework, the
median over repetitions, the ratio to functional_dl, and the worker's peak resident memory.

    python benchmarks/mlp_train_step.py                 # 5 repetitions of 300 steps, 1 thread
    python benchmarks/mlp_train_step.py --profile       # cProfile of the functional_dl step
    python benchmarks/mlp_train_step.py --threads 2

BLAS threads are pinned (``--threads``, default 1) in every worker, so all three frameworks use the
same number of cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

BATCH, SIZES, LR = 100, (40, 100, 100, 10), 1e-3
FRAMEWORKS = ("functional_dl", "torch", "numpy")


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return x, y


# ---- functional_dl ---------------------------------------------------------------------------


def _fdl_step() -> Callable[[], object]:
    import functional_dl as fdl
    from functional_dl import layers as L

    x, y = _data()
    loss = fdl.losses.softmax_cross_entropy
    net = fdl.serial(L.dense(100), L.relu(), L.dense(100), L.relu(), L.dense(10))
    _, params = net.init(fdl.random.key(0), (None, SIZES[0]))
    opt = fdl.optim.adam(LR)
    step = fdl.train.train_step(net, loss, opt)
    box = [fdl.train.init_train_state(opt, params)]
    key = fdl.random.key(1)

    def run() -> object:
        box[0], logs = step(box[0], (x, y), key)
        return logs

    return run


# ---- PyTorch ---------------------------------------------------------------------------------


def _torch_step() -> Callable[[], object]:
    import torch

    x_np, y_np = _data()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(40, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return run


# ---- plain NumPy, as a competent NumPy user would write it -----------------------------------


NpArrays = list[np.ndarray]


def np_init() -> NpArrays:
    """He-initialised ``[w1, b1, w2, b2, w3, b3]``, weights ``(n_out, n_in)``."""
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in itertools.pairwise(SIZES):
        params.append((rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32))
        params.append(np.zeros(n_out, np.float32))
    return params


def np_forward(params: NpArrays, x: np.ndarray) -> tuple[np.ndarray, NpArrays]:
    """Logits and the intermediate values backward needs."""
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2.T + b2
    a2 = np.maximum(z2, 0)
    return a2 @ w3.T + b3, [z1, a1, z2, a2]


def np_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    rows = np.arange(len(y))
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.log(s[:, 0]).mean() - z[rows, y].mean())
    d = e / s
    d[rows, y] -= 1
    d /= len(y)
    return loss, d


def np_backward(params: NpArrays, x: np.ndarray, d3: np.ndarray, acts: NpArrays) -> NpArrays:
    """Gradients ``[dw1, db1, dw2, db2, dw3, db3]``."""
    z1, a1, z2, a2 = acts
    d2 = (d3 @ params[4]) * (z2 > 0)
    d1 = (d2 @ params[2]) * (z1 > 0)
    return [d1.T @ x, d1.sum(0), d2.T @ a1, d2.sum(0), d3.T @ a2, d3.sum(0)]


def np_adam(params: NpArrays, grads: NpArrays, m: NpArrays, v: NpArrays, t: int) -> None:
    """One Adam step, in place, as one would write it by hand."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    c1, c2 = 1 - b1**t, 1 - b2**t
    for i, g in enumerate(grads):
        m[i] *= b1
        m[i] += (1 - b1) * g
        v[i] *= b2
        v[i] += (1 - b2) * (g * g)
        params[i] -= (LR / c1) * m[i] / (np.sqrt(v[i] / c2) + eps)


def _numpy_step() -> Callable[[], object]:
    x, y = _data()
    params = np_init()
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def run() -> object:
        logits, acts = np_forward(params, x)
        loss, dlogits = np_loss(logits, y)
        grads = np_backward(params, x, dlogits, acts)
        t[0] += 1
        np_adam(params, grads, m, v, t[0])
        return loss

    return run


BUILDERS: dict[str, Callable[[], Callable[[], object]]] = {
    "functional_dl": _fdl_step,
    "torch": _torch_step,
    "numpy": _numpy_step,
}


def worker(framework: str, steps: int, warmup: int, threads: int) -> dict[str, float]:
    """Run in a subprocess: time ``steps`` steps after ``warmup`` and report median and peak RSS."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    run = BUILDERS[framework]()
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"median_s": statistics.median(times), "peak_rss_mb": peak_kb / 1024}


def _spawn(framework: str, steps: int, warmup: int, threads: int) -> dict[str, float]:
    env = {**os.environ}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", framework, "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(
        [*cmd, "--threads", str(threads)], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def profile(steps: int) -> None:
    """cProfile of the functional_dl step: where its time goes, by own time."""
    import cProfile
    import pstats

    run = _fdl_step()
    for _ in range(20):
        run()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        run()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def breakdown(steps: int) -> None:
    """Each part of the step, ours next to plain NumPy, timed interleaved (so load hits both alike)."""
    import functional_dl as fdl
    from functional_dl import layers as L

    x, y = _data()
    loss = fdl.losses.softmax_cross_entropy
    net = fdl.serial(L.dense(100), L.relu(), L.dense(100), L.relu(), L.dense(10))
    _, params = net.init(fdl.random.key(0), (None, SIZES[0]))
    opt = fdl.optim.adam(LR)
    state = opt.init(params)
    logits, cache = net.forward(params, x)
    _, dlogits = loss(logits, y)
    grads = net.param_grads(params, cache, dlogits)
    ref = [np.array(p) for p in params.values()]  # the same weights, in the order w1, b1, w2, ...
    ref_logits, acts = np_forward(ref, x)
    _, ref_d = np_loss(ref_logits, y)
    ref_grads = np_backward(ref, x, ref_d, acts)
    m, v = [np.zeros_like(p) for p in ref], [np.zeros_like(p) for p in ref]
    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "forward": (partial(net.forward, params, x), partial(np_forward, ref, x)),
        "loss": (partial(loss, logits, y), partial(np_loss, ref_logits, y)),
        "backward": (
            partial(net.param_grads, params, cache, dlogits),
            partial(np_backward, ref, x, ref_d, acts),
        ),
        "adam update": (partial(opt.update, state, grads), partial(np_adam, ref, ref_grads, m, v, 1)),
        "whole step": (_fdl_step(), _numpy_step()),
    }
    times: dict[str, list[list[float]]] = {k: [[], []] for k in pairs}
    for _ in range(steps):
        for name, fns in pairs.items():
            for side, fn in enumerate(fns):
                start = time.perf_counter()
                fn()
                times[name][side].append(time.perf_counter() - start)
    print(f"{'part':<14}{'functional_dl (us)':>20}{'plain NumPy (us)':>18}{'ratio':>8}")
    for name, (ours, ref_times) in times.items():
        a, b = statistics.median(ours) * 1e6, statistics.median(ref_times) * 1e6
        print(f"{name:<14}{a:>20.1f}{b:>18.1f}{a / b:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", choices=FRAMEWORKS)
    parser.add_argument("--profile", action="store_true", help="cProfile our step (pin threads yourself)")
    parser.add_argument("--breakdown", action="store_true", help="time each part of our step")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.warmup, args.threads)))
        return
    if args.profile:
        profile(args.steps)
        return
    if args.breakdown:
        breakdown(args.steps)
        return
    available = [f for f in FRAMEWORKS if f != "torch" or _has_torch()]
    results: dict[str, list[dict[str, float]]] = {f: [] for f in available}
    for rep in range(args.reps):
        order = available[rep % len(available) :] + available[: rep % len(available)]
        for framework in order:
            results[framework].append(_spawn(framework, args.steps, args.warmup, args.threads))
    ours = statistics.median(r["median_s"] for r in results["functional_dl"])
    print(
        f"MLP 40-100-100-10, batch {BATCH}, float32, softmax CE + Adam; "
        f"{args.reps} reps x {args.steps} steps, {args.threads} thread(s)"
    )
    print(f"{'framework':<15}{'median step (us)':>18}{'vs functional_dl':>18}{'peak RSS (MB)':>15}")
    for framework, runs in results.items():
        med = statistics.median(r["median_s"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        print(f"{framework:<15}{med * 1e6:>18.1f}{med / ours:>17.2f}x{rss:>15.1f}")


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


if __name__ == "__main__":
    main()
