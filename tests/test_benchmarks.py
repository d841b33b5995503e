"""Smoke test of ``python -m benchmarks``: a quick run of the smallest workload and its JSON.

Timings are never asserted (they belong to the benchmarks themselves); only that every framework
ran, in its own process, with the thread count the workload asks for, and that the result
renders as the README's Markdown table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _benchmarks(*args: str) -> str:
    cmd = [sys.executable, "-m", "benchmarks", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.mark.torch
def test_quick_run_writes_every_framework(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    out = tmp_path / "result.json"
    printed = _benchmarks("--quick", "--only", "mnist1d_mlp", "--json", str(out))
    doc = json.loads(out.read_text())
    assert doc["quick"] is True
    assert {"cpu", "cores", "numpy", "torch", "blas"} <= set(doc["machine"])
    [workload] = doc["workloads"]
    assert workload["name"] == "mnist1d_mlp" and workload["threads"] == 1 and workload["reps"] == 1
    assert workload["skipped"] == {}
    assert set(workload["frameworks"]) == {"functional_dl", "torch", "numpy"}
    assert set(workload["ratios"]) == {"torch", "numpy"}
    for name, result in workload["frameworks"].items():
        [run] = result["runs"]
        assert run["calls"] == 2 and run["median_s"] > 0 and run["peak_rss_mb"] > 0
        assert result["median_s"] == run["median_s"]
        assert {pool["threads"] for pool in run["threads"]["pools"]} == {1}, name
        assert ("alloc_peak_mb" in run) == (name != "torch")
    assert workload["frameworks"]["torch"]["threads"]["torch"] == 1
    ratio = workload["ratios"]["torch"]
    ours, theirs = (workload["frameworks"][f]["median_s"] for f in ("functional_dl", "torch"))
    assert ratio["ratio"] == pytest.approx(ours / theirs)
    assert "mnist1d_mlp" in printed and "functional_dl" in printed

    table = _benchmarks("--render", str(out))
    assert doc["date"] in table and doc["machine"]["cpu"] in table
    [row] = [line for line in table.splitlines() if line.startswith("| MNIST-1D MLP")]
    assert row.count("|") == 9


def test_only_names_an_unknown_workload() -> None:
    cmd = [sys.executable, "-m", "benchmarks", "--only", "no_such_workload"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "mnist1d_mlp" in out.stderr


def test_profile_takes_a_thread_count() -> None:
    pytest.importorskip("threadpoolctl")
    printed = _benchmarks("--profile", "mnist1d_mlp", "--calls", "2", "--threads", "1")
    assert "Ordered by: internal time" in printed and "train/step.py" in printed
