"""Run workloads: one fresh process per framework and repetition, then summarise.

The parent never imports a framework. For each repetition it starts one worker process per
framework (the order rotates between repetitions, so slow drift on a shared machine hits every
framework alike); the worker pins its threads, builds the workload, times calls and prints one
JSON line. Threads are pinned three ways, all to the workload's count: the ``OMP/OPENBLAS/MKL``
environment variables before the process starts, ``threadpoolctl.threadpool_limits`` for every
BLAS and OpenMP pool loaded once the framework is imported, and ``torch.set_num_threads``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.common import Unsupported
from benchmarks.registry import FRAMEWORKS, OURS, Workload, by_name

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
Json = dict[str, Any]
WORKER_TIMEOUT_S = 300  # a worker this slow is reported as an error instead of stalling the run


class Timing(NamedTuple):
    """How long a worker times: untimed ``warmup`` calls, then ``min_calls`` and ``budget_s`` seconds."""

    warmup: int
    min_calls: int
    budget_s: float
    max_calls: int
    quick: bool


def timing_of(workload: Workload, quick: bool) -> Timing:
    """The workload's own timing, or a short smoke-run version of it."""
    if quick:
        return Timing(min(workload.warmup, 1), 2, 0.0, 2, True)
    return Timing(workload.warmup, workload.min_calls, workload.budget_s, workload.max_calls, False)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# ---- inside a worker process -----------------------------------------------------------------


def _rss_mb() -> float:
    """Current resident set size of this process, from /proc (Linux), in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def pin_threads(framework: str, threads: int) -> object:
    """Import the framework, then limit every thread pool; returns the limiter (keep it alive)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    elif framework == OURS:
        import functional_dl  # noqa: F401  (loads NumPy's BLAS before the limits are applied)
    if not has_module("threadpoolctl"):
        return None
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, unused-ignore]  # typed in newer releases

    return threadpool_limits(limits=threads)


def threads_in_use() -> Json:
    """The thread pools loaded in this process (threadpoolctl) and PyTorch's intra-op threads."""
    info: Json = {}
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].get_num_threads()
    if has_module("threadpoolctl"):
        from threadpoolctl import threadpool_info

        info["pools"] = [
            {
                "api": pool["internal_api"],
                "version": pool.get("version"),
                "threads": pool["num_threads"],
                "library": Path(pool["filepath"]).name,
            }
            for pool in threadpool_info()
        ]
    return info


def _alloc_peak_mb(run: Callable[[], object]) -> float:
    """Peak memory allocated during one call, by tracemalloc (which sees NumPy's allocations)."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 2**20


def worker(name: str, framework: str, timing: Timing) -> Json:
    """Build ``name`` in ``framework`` and time it (runs in its own process)."""
    workload = by_name(name)
    limiter = pin_threads(framework, workload.threads)
    baseline = _rss_mb()
    try:
        run = workload.builders[framework](timing.quick)
    except Unsupported as e:
        return {"skipped": str(e)}
    for _ in range(timing.warmup):
        run()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < timing.min_calls or (
        time.perf_counter() - started < timing.budget_s and len(times) < timing.max_calls
    ):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    result: Json = {
        "calls": len(times),
        "median_s": statistics.median(times),
        "q1_s": quartiles[0],
        "q3_s": quartiles[2],
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "threads": threads_in_use(),
        "threadpoolctl": limiter is not None,
    }
    if framework != "torch":  # tracemalloc does not see PyTorch's allocator
        result["alloc_peak_mb"] = _alloc_peak_mb(run)
    return result


# ---- in the parent ---------------------------------------------------------------------------


def spawn(name: str, framework: str, timing: Timing, threads: int) -> Json:
    """Run :func:`worker` in a fresh interpreter; an exception there becomes ``{"error": ...}``."""
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, str(threads))}
    spec = json.dumps({"name": name, "framework": framework, "timing": timing._asdict()})
    cmd = [sys.executable, "-m", "benchmarks", "--worker", spec]
    try:
        out = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=WORKER_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no output"}
    result: Json = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def available(frameworks: Sequence[str], workload: Workload) -> tuple[list[str], Json]:
    """The frameworks to run, and the reason for each one left out."""
    run: list[str] = []
    skipped: Json = {}
    for framework in frameworks:
        if framework not in workload.builders:
            continue
        if framework == "torch" and not has_module("torch"):
            skipped[framework] = "torch is not installed"
        else:
            run.append(framework)
    return run, skipped


def _ratios(ours: list[Json], theirs: list[Json]) -> Json:
    """Ours over theirs: of the medians, and the range of the per-repetition (paired) ratios."""
    paired = [a["median_s"] / b["median_s"] for a, b in zip(ours, theirs, strict=True)]
    median = statistics.median(r["median_s"] for r in ours) / statistics.median(r["median_s"] for r in theirs)
    return {"ratio": median, "min": min(paired), "max": max(paired)}


def summarise(runs: list[Json]) -> Json:
    """Median over repetitions of the per-call medians, their range, and the largest peak RSS."""
    medians = [r["median_s"] for r in runs]
    summary: Json = {
        "median_s": statistics.median(medians),
        "min_s": min(medians),
        "max_s": max(medians),
        "calls": sum(r["calls"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "baseline_rss_mb": min(r["baseline_rss_mb"] for r in runs),
        "threads": runs[0]["threads"],
    }
    if "alloc_peak_mb" in runs[0]:
        summary["alloc_peak_mb"] = max(r["alloc_peak_mb"] for r in runs)
    return summary


def run_workload(
    workload: Workload, frameworks: Sequence[str], quick: bool, reps: int | None, log: Callable[[str], None]
) -> Json:
    """All repetitions of one workload, summarised, with ratios of ours to each other framework."""
    timing = timing_of(workload, quick)
    n_reps = 1 if quick and reps is None else reps or workload.reps
    order, skipped = available(frameworks, workload)
    runs: dict[str, list[Json]] = {f: [] for f in order}
    started = time.perf_counter()
    for rep in range(n_reps):
        for framework in order[rep % len(order) :] + order[: rep % len(order)]:
            result = spawn(workload.name, framework, timing, workload.threads)
            if "skipped" in result or "error" in result:
                skipped[framework] = result.get("skipped") or f"error: {result['error']}"
                order.remove(framework)
                del runs[framework]
                log(f"  {workload.name}: {framework} left out: {skipped[framework]}")
                continue
            runs[framework].append(result)
    results: Json = {
        "name": workload.name,
        "title": workload.title,
        "unit": workload.unit,
        "threads": workload.threads,
        "reps": n_reps,
        "seconds": time.perf_counter() - started,
        "frameworks": {f: {**summarise(r), "runs": r} for f, r in runs.items()},
        "skipped": skipped,
        "ratios": {},
    }
    if OURS in runs:
        results["ratios"] = {f: _ratios(runs[OURS], r) for f, r in runs.items() if f != OURS}
    return results


def machine() -> Json:
    """Where the numbers come from: CPU, cores, memory, OS, versions and NumPy's BLAS."""
    import numpy as np

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    info: Json = {
        "cpu": names[0] if names else cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": threads_in_use().get("pools", "threadpoolctl is not installed"),
    }
    if has_module("torch"):
        from importlib.metadata import version

        info["torch"] = version("torch")
    return info


def run_all(
    workloads: Sequence[Workload],
    frameworks: Sequence[str] = FRAMEWORKS,
    quick: bool = False,
    reps: int | None = None,
    *,
    log: Callable[[str], None] = print,
    save: Callable[[Json], None] | None = None,
) -> Json:
    """Every workload in turn; the JSON document ``--json`` writes.

    ``save`` receives the document so far after each workload, so an interrupted run keeps what
    it measured.
    """
    started = time.perf_counter()
    doc: Json = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "quick": quick,
        "seconds": 0.0,
        "workloads": [],
    }
    for workload in workloads:
        log(f"{workload.name}: {workload.title}")
        doc["workloads"].append(run_workload(workload, frameworks, quick, reps, log))
        doc["seconds"] = time.perf_counter() - started
        log(f"  {doc['workloads'][-1]['seconds']:.0f} s ({doc['seconds']:.0f} s so far)")
        if save is not None:
            save(doc)
    return doc
