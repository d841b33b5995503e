"""Sweeps on a real 2-worker LocalCluster and on a process pool equal each trial run alone."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

import functional_dl as fdl
from functional_dl import checkpoint, train
from functional_dl.distributed import SweepResult, Trial, dask_executor, format_table, grid, sweep
from functional_dl.errors import LabelError, NotPicklableError
from functional_dl.train import FitResult
from tests.distributed import runs

TRIALS = grid(lr=[0.01, 0.05], weight_decay=[0.0, 1e-2], seed=[0, 1])


def assert_is_the_run_alone(result: SweepResult, alone: FitResult[Any]) -> None:
    assert result.history == alone.history
    assert result.final == {k: v[-1] for k, v in alone.history.items()}


def test_a_sweep_on_dask_equals_each_trial_run_alone(client: Client, tmp_path: Path) -> None:
    results = sweep(runs.trial, TRIALS, dask_executor(client), checkpoint_dir=str(tmp_path / "new"))
    assert [r.trial for r in results] == list(TRIALS)
    for r in results:
        alone = runs.trial(r.trial.hparams)
        assert_is_the_run_alone(r, alone)
        assert r.attempts == 1
        assert r.checkpoint is not None
        template = train.init_fit_checkpoint(alone.train_state, ())
        saved = checkpoint.load(r.checkpoint, template=template)
        fdl.testing.assert_bitwise_equal(saved.train_state.params, alone.train_state.params, "params")
    # Different hyperparameters train differently: the table is not one run repeated.
    assert len({r.final["loss"] for r in results}) == len(TRIALS)
    table = format_table(results, ["loss", "accuracy"])
    assert table.splitlines()[0].split() == ["trial", "lr", "weight_decay", "seed", "loss", "accuracy"]
    assert len(table.splitlines()) == 1 + len(TRIALS)


def test_a_sweep_on_a_process_pool_gives_the_same_table(client: Client) -> None:
    trials = TRIALS[:3]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        on_pool = sweep(runs.trial, trials, pool)
    on_dask = sweep(runs.trial, trials, dask_executor(client))
    assert [(r.trial, r.history) for r in on_pool] == [(r.trial, r.history) for r in on_dask]


def _kill_a_busy_worker(client: Client, killed: list[str]) -> None:
    pids: dict[str, int] = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [w for w, tasks in client.processing().items() if tasks]  # type: ignore[no-untyped-call]
        if busy:
            time.sleep(0.3)  # well inside a trial of a few seconds
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])
            return
        time.sleep(0.05)


def test_a_worker_killed_mid_sweep_costs_only_its_trial(client: Client) -> None:
    trials = grid(lr=[0.01, 0.03], weight_decay=[0.0], seed=[0], epochs=[150])
    killed: list[str] = []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(client, killed))
    killer.start()
    results = sweep(runs.slow_trial, trials, dask_executor(client))
    killer.join()
    assert killed, "no worker was busy to be killed"
    for r in results:
        assert_is_the_run_alone(r, runs.slow_trial(r.trial.hparams))
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker for the next tests


def test_a_trial_that_fails_raises_its_own_error(client: Client) -> None:
    trials = grid(lr=[0.01], weight_decay=[0.0], seed=[0, 1])
    with pytest.raises(LabelError, match=r"^softmax_cross_entropy: "):
        sweep(runs.failing_trial, trials, dask_executor(client))


def test_an_unpicklable_trial_function_is_refused(client: Client) -> None:
    def closure(hparams: Any) -> FitResult[Any]:
        return runs.trial(hparams)

    with pytest.raises(NotPicklableError, match=r"distributed.sweep: run .*does not pickle"):
        sweep(closure, TRIALS, dask_executor(client))
    with pytest.raises(NotPicklableError):
        bad_epochs: Any = lambda: 1
        sweep(partial(runs.trial, epochs=bad_epochs), TRIALS, dask_executor(client))


def test_grid_and_random_search_are_pure() -> None:
    assert [t.number for t in TRIALS] == list(range(8))
    assert TRIALS[5] == Trial(5, {"lr": 0.05, "weight_decay": 0.0, "seed": 1})
    space = {"lr": fdl.distributed.log_uniform(1e-4, 1e-1), "width": fdl.distributed.choice([8, 16, 32])}
    first = fdl.distributed.random_search(fdl.random.key(0), 20, **space)
    assert first == fdl.distributed.random_search(fdl.random.key(0), 20, **space)
    assert first[:5] == fdl.distributed.random_search(fdl.random.key(0), 5, **space)
    lrs = np.array([t.hparams["lr"] for t in first], dtype=np.float64)
    assert np.all((lrs >= 1e-4) & (lrs < 1e-1)) and len(set(lrs.tolist())) == 20
    assert {t.hparams["width"] for t in first} == {8, 16, 32}
    assert first != fdl.distributed.random_search(fdl.random.key(1), 20, **space)


def test_the_package_imports_and_sweeps_without_dask() -> None:
    # A fresh interpreter in which importing Dask fails, as where the extra is not installed.
    code = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from functional_dl import distributed as D\n"
        "from tests.distributed import runs\n"
        "with ThreadPoolExecutor(1) as ex:\n"
        "    print(len(D.sweep(runs.trial, D.grid(lr=[0.01], weight_decay=[0.0], seed=[0]), ex)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
