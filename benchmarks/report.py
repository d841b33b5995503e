"""Render a result document (what ``--json`` writes) as a text report or as the README's Markdown.

``ratio`` is always functional_dl's time over the other framework's: above 1 we are slower.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.registry import OURS
from benchmarks.runner import Json

NAMES = {"functional_dl": "functional_dl", "torch": "PyTorch", "numpy": "plain NumPy"}
BEGIN, END = "<!-- benchmarks: begin -->", "<!-- benchmarks: end -->"


def duration(seconds: float) -> str:
    """``412 µs``, ``75.1 ms``, ``2.31 s``: three significant figures in a readable unit."""
    scale, unit = (1.0, "s") if seconds >= 1 else (1e-3, "ms") if seconds >= 1e-3 else (1e-6, "µs")
    value = seconds / scale
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _ratio(r: Json) -> str:
    return f"{r['ratio']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def _threads(threads: Json) -> str:
    pools = ", ".join(f"{p['api']} {p['threads']}" for p in threads.get("pools", []))
    torch = f"torch {threads['torch']}" if "torch" in threads else ""
    return "; ".join(part for part in (torch, pools) if part) or "-"


def machine_line(doc: Json) -> str:
    m = doc["machine"]
    blas = m["blas"]
    blas_text = ", ".join(f"{p['api']} {p['version']}" for p in blas) if isinstance(blas, list) else blas
    torch = f", PyTorch {m['torch']}" if "torch" in m else ""
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}; Python {m['python']}, "
        f"NumPy {m['numpy']} ({blas_text}){torch}"
    )


def text(doc: Json) -> str:
    """The report ``python -m benchmarks`` prints: one block per workload, one row per framework."""
    lines = [f"{doc['date']}: {machine_line(doc)}" + (" [quick run]" if doc["quick"] else "")]
    for w in doc["workloads"]:
        lines += ["", f"{w['name']}: {w['title']} ({w['threads']} thread(s), {w['reps']} rep(s))"]
        header = f"  {'framework':<15}{'median/' + w['unit']:>14}{'rep range':>22}{'ours/this':>24}"
        lines.append(header + f"{'peak RSS':>11}  threads")
        for name, f in w["frameworks"].items():
            spread = f"{duration(f['min_s'])}-{duration(f['max_s'])}"
            ratio = _ratio(w["ratios"][name]) if name in w["ratios"] else "-"
            lines.append(
                f"  {name:<15}{duration(f['median_s']):>14}{spread:>22}{ratio:>24}"
                f"{f['peak_rss_mb']:>8.0f} MB  {_threads(f['threads'])}"
            )
        lines += [f"  {name:<15}skipped: {why}" for name, why in w["skipped"].items()]
    lines += ["", f"total {doc['seconds']:.0f} s"]
    return "\n".join(lines)


def markdown(doc: Json) -> str:
    """The README's Speed table: one row per workload, with the run's date and machine."""
    reps = sorted({w["reps"] for w in doc["workloads"]})
    rows = [
        f"Measured by `python -m benchmarks` on {doc['date']}, on {machine_line(doc)}. "
        f"Each cell is the median over {' or '.join(map(str, reps))} repetitions (each framework in its "
        "own process, run alternately) of the median time per call; a ratio is functional_dl's time "
        "over the other's (above 1: we are slower), with the range of the per-repetition ratios in "
        "brackets; peak RSS is the largest resident memory of a worker process, framework imports "
        "included.",
        "",
        "| workload | threads | functional_dl | PyTorch | ours / PyTorch | plain NumPy | ours / NumPy "
        "| peak RSS ours / PyTorch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in doc["workloads"]:
        fw, ratios = w["frameworks"], w["ratios"]

        def cell(name: str, fw: Json = fw, w: Json = w) -> str:
            if name in fw:
                return f"{duration(fw[name]['median_s'])}/{w['unit']}"
            return "skipped" if name in w["skipped"] else "-"

        rss = " / ".join(f"{fw[n]['peak_rss_mb']:.0f}" if n in fw else "-" for n in (OURS, "torch"))
        rows.append(
            f"| {w['title']} | {w['threads']} | {cell(OURS)} | {cell('torch')} | "
            f"{_ratio(ratios['torch']) if 'torch' in ratios else '-'} | {cell('numpy')} | "
            f"{_ratio(ratios['numpy']) if 'numpy' in ratios else '-'} | {rss} MB |"
        )
    notes = [
        f"{NAMES[n]} left out of {w['name']}: {why}"
        for w in doc["workloads"]
        for n, why in w["skipped"].items()
    ]
    return "\n".join(rows + (["", *notes] if notes else []))


def update_readme(path: Path, doc: Json) -> None:
    """Replace the text between the benchmark markers in ``path`` with :func:`markdown` of ``doc``."""
    source = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(source):
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers to write between")
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n{markdown(doc)}\n{END}", source))
