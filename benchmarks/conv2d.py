"""Time forward + backward of one conv2d layer: functional_dl vs PyTorch CPU, float32.

The layer: input ``64 x 32 x 28 x 28`` (NCHW), 64 output channels, 3x3 kernel, padding 1, bias.
One iteration is the forward pass and the full backward pass (input, weight and bias gradients)
with a fixed output gradient. Each framework runs in its own fresh subprocess; the order
alternates between repetitions; every worker reports the median of its per-iteration times after
a warm-up, its resident memory before the first call and its peak resident memory. Both
frameworks get the same number of threads (``--threads``, default: all cores), set through
``OMP/OPENBLAS/MKL_NUM_THREADS`` and ``torch.set_num_threads``.

For functional_dl the worker also measures, with ``tracemalloc`` (NumPy reports its allocations
to it), the peak memory allocated by the forward and by the backward pass, next to the size of
one im2col matrix (``N * C * kh * kw * H_out * W_out`` floats).

    python benchmarks/conv2d.py               # 5 repetitions of 20 iterations
    python benchmarks/conv2d.py --reps 3 --iters 10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

N, C, H, W, OUT, K = 64, 32, 28, 28, 64, 3
FRAMEWORKS = ("functional_dl", "torch")


def _rss_mb() -> float:
    """Current resident set size of this process, from /proc (Linux), in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    dy = rng.standard_normal((N, OUT, H, W), dtype=np.float32)
    return x, dy


def _fdl_iteration() -> tuple[Callable[[], object], dict[str, float]]:
    import functional_dl as fdl

    x, dy = _data()
    layer = fdl.layers.conv2d(OUT, K, padding=1)
    _, params = layer.init(fdl.random.key(0), (None, C, H, W))

    def run() -> object:
        _, cache = layer.forward(params, x)
        return layer.backward(params, cache, dy)

    run()  # warm caches before measuring allocations
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    _, cache = layer.forward(params, x)
    forward_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    grads = layer.backward(params, cache, dy)
    backward_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del cache, grads
    extra = {
        "im2col_mb": N * C * K * K * H * W * 4 / 2**20,
        "forward_alloc_peak_mb": forward_peak / 2**20,
        "backward_alloc_peak_mb": backward_peak / 2**20,
    }
    return run, extra


def _torch_iteration() -> tuple[Callable[[], object], dict[str, float]]:
    import torch

    x_np, dy_np = _data()
    x = torch.from_numpy(x_np).requires_grad_(True)
    dy = torch.from_numpy(dy_np)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(C, OUT, K, padding=1)

    def run() -> object:
        x.grad = None
        conv.zero_grad(set_to_none=True)
        y = conv(x)
        y.backward(dy)
        return x.grad

    return run, {}


def worker(framework: str, iters: int, warmup: int, threads: int) -> dict[str, float]:
    """Run in a subprocess: time ``iters`` iterations after ``warmup``; report times and memory."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    build = _fdl_iteration if framework == "functional_dl" else _torch_iteration
    rss_before = _rss_mb()
    run, extra = build()
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        **extra,
    }


def _spawn(framework: str, iters: int, warmup: int, threads: int) -> dict[str, float]:
    env = {**os.environ}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", framework, "--iters", str(iters), "--warmup", str(warmup)]
    out = subprocess.run(
        [*cmd, "--threads", str(threads)], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", choices=FRAMEWORKS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.iters, args.warmup, args.threads)))
        return
    available = [f for f in FRAMEWORKS if f != "torch" or _has_torch()]
    results: dict[str, list[dict[str, float]]] = {f: [] for f in available}
    for rep in range(args.reps):
        order = available if rep % 2 == 0 else available[::-1]
        for framework in order:
            results[framework].append(_spawn(framework, args.iters, args.warmup, args.threads))
    print(
        f"conv2d fwd+bwd, input {N}x{C}x{H}x{W}, {OUT} out, {K}x{K}, padding 1, float32; "
        f"{args.reps} reps x {args.iters} iterations, {args.threads} thread(s)"
    )
    ours = statistics.median(r["median_s"] for r in results["functional_dl"])
    print(
        f"{'framework':<15}{'median (ms)':>12}{'per rep (ms)':>34}{'vs torch':>10}{'RSS start/peak (MB)':>22}"
    )
    theirs = statistics.median(r["median_s"] for r in results["torch"]) if "torch" in results else None
    for framework, runs in results.items():
        med = statistics.median(r["median_s"] for r in runs)
        reps = " ".join(f"{r['median_s'] * 1e3:.1f}" for r in runs)
        ratio = f"{med / theirs:.2f}x" if theirs else "-"
        start = min(r["rss_before_mb"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        print(f"{framework:<15}{med * 1e3:>12.1f}{reps:>34}{ratio:>10}{f'{start:.0f} / {peak:.0f}':>22}")
    first = results["functional_dl"][0]
    print(
        "functional_dl allocations (tracemalloc): "
        f"forward peak {first['forward_alloc_peak_mb']:.1f} MB, "
        f"backward peak {first['backward_alloc_peak_mb']:.1f} MB; "
        f"one im2col matrix is {first['im2col_mb']:.1f} MB"
    )
    if theirs:
        print(f"ratio functional_dl / torch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
