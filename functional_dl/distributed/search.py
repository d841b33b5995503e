"""Sweeps: many independent ``fit`` runs on an executor, collected into one results table.

A sweep is a map: each :class:`Trial` (its number and hyperparameters) goes to a user's
``run(hparams) -> FitResult`` on some worker, and the driver collects each run's history, its
final logs and (optionally) a checkpoint of its final training state. Any
``concurrent.futures.Executor`` runs it: a local ``ProcessPoolExecutor`` or Dask's
``client.get_executor()``. Training is pure, so a trial that is run again gives the same result:
when the worker running a trial is lost, the trial is simply submitted again (Dask also reschedules
it by itself; a ``ProcessPoolExecutor`` whose process dies is broken for good, so losing a worker
there ends the sweep with ``ClusterError``).

Example::

    trials = grid(lr=[1e-3, 1e-2], weight_decay=[0.0, 1e-4], seed=[0, 1, 2])
    results = sweep(partial(train_one, data=data), trials, executor)
    print(format_table(results, ["loss", "val_accuracy"]))
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, CancelledError, Executor, Future, wait
from functools import partial
from typing import Any, NamedTuple, Protocol

from functional_dl import checkpoint
from functional_dl.distributed.data_parallel import check_picklable
from functional_dl.errors import ClusterError, DomainError
from functional_dl.random import fold_in, generator
from functional_dl.train.loop import FitCheckpoint, FitResult, History
from functional_dl.train.step import Logs
from functional_dl.types import Key

__all__ = [
    "HParam",
    "Hparams",
    "Sampler",
    "SweepResult",
    "Trial",
    "TrialFn",
    "choice",
    "format_table",
    "grid",
    "log_uniform",
    "random_search",
    "sweep",
]

#: One hyperparameter value.
HParam = float | int | str | bool
#: A trial's hyperparameters by name (``{"lr": 0.01, "seed": 2}``).
Hparams = Mapping[str, HParam]


class Trial(NamedTuple):
    """One run of a sweep: its position in the sweep and its hyperparameters."""

    number: int
    hparams: Hparams


class TrialFn(Protocol):
    """``(hparams) -> FitResult``: one training run; it must pickle (a module-level function or partial)."""

    def __call__(self, hparams: Hparams, /) -> FitResult[Any]: ...


class SweepResult(NamedTuple):
    """A row of the results table.

    Attributes:
        trial: the trial.
        history: the run's per-epoch history (``FitResult.history``).
        final: the last epoch's value of each history entry.
        checkpoint: the file holding the run's final :class:`~functional_dl.train.FitCheckpoint`,
            or ``None`` when the sweep saves none.
        attempts: how many times the trial was submitted (more than 1 after a lost worker).
    """

    trial: Trial
    history: History
    final: Logs
    checkpoint: str | None
    attempts: int


def grid(**axes: Sequence[HParam]) -> tuple[Trial, ...]:
    """Every combination of the given values, the last axis varying fastest.

    Example:
        >>> [t.hparams for t in grid(lr=[0.1, 0.01], seed=[0, 1])]
        [{'lr': 0.1, 'seed': 0}, {'lr': 0.1, 'seed': 1}, {'lr': 0.01, 'seed': 0}, {'lr': 0.01, 'seed': 1}]
    """
    names = list(axes)
    combos = itertools.product(*(axes[k] for k in names))
    return tuple(Trial(i, dict(zip(names, values, strict=True))) for i, values in enumerate(combos))


#: Draws one hyperparameter value from a key.
Sampler = Callable[[Key], HParam]


def _log_uniform(key: Key, /, *, low: float, high: float) -> float:
    return float(math.exp(generator(key).uniform(math.log(low), math.log(high))))


def log_uniform(low: float, high: float) -> Sampler:
    """A sampler of values whose logarithm is uniform on ``[log low, log high)`` (learning rates)."""
    if not 0 < low < high < math.inf:
        raise DomainError("log_uniform", f"need 0 < low < high (finite), got {low}, {high}")
    return partial(_log_uniform, low=low, high=high)


def _choice(key: Key, /, *, values: tuple[HParam, ...]) -> HParam:
    return values[int(generator(key).integers(len(values)))]


def choice(values: Sequence[HParam]) -> Sampler:
    """A sampler of one of ``values``, each equally likely."""
    if not values:
        raise DomainError("choice", "needs at least one value, got none")
    return partial(_choice, values=tuple(values))


def random_search(key: Key, n: int, **space: Sampler) -> tuple[Trial, ...]:
    """``n`` trials, hyperparameter ``name`` of trial ``i`` drawn from ``fold_in(key, i)``'s ``j``-th child.

    Pure like every sampler here: the same key gives the same trials, and trial ``i`` does not
    depend on ``n``.

    Example:
        >>> from functional_dl import random
        >>> trials = random_search(random.key(0), 3, lr=log_uniform(1e-4, 1e-1), seed=choice([0, 1]))
        >>> len(trials), all(1e-4 <= t.hparams["lr"] < 1e-1 for t in trials)
        (3, True)
    """
    names = list(space)
    return tuple(
        Trial(i, {k: space[k](fold_in(fold_in(key, i), j)) for j, k in enumerate(names)}) for i in range(n)
    )


def _is_lost_worker(err: BaseException) -> bool:
    # The executor lost the process running the trial; the trial itself did not fail.
    if isinstance(err, BrokenExecutor | CancelledError):
        return True
    return type(err).__name__ == "KilledWorker"  # Dask's, without importing Dask


def _collect(trial: Trial, result: FitResult[Any], attempts: int, save_dir: str | None) -> SweepResult:
    path = None
    if save_dir is not None:
        path = os.path.join(save_dir, f"trial{trial.number:04d}.npz")
        checkpoint.save(path, FitCheckpoint(result.train_state, result.callback_states))
    final = {k: v[-1] for k, v in result.history.items() if v}
    return SweepResult(trial, result.history, final, path, attempts)


def sweep(
    run: TrialFn,
    trials: Iterable[Trial],
    executor: Executor,
    *,
    checkpoint_dir: str | None = None,
    retries: int = 2,
) -> tuple[SweepResult, ...]:
    """Run ``run(trial.hparams)`` for every trial on ``executor``; the results in trial order.

    Args:
        run: one training run, ``(hparams) -> FitResult``; it must pickle.
        trials: from :func:`grid`, :func:`random_search`, or built by hand.
        executor: where the runs go (``ProcessPoolExecutor``, ``client.get_executor()``).
        checkpoint_dir: save each run's final ``FitCheckpoint`` there as ``trial<number>.npz``
            (the directory is created if need be).
        retries: how many times a trial whose worker was lost is submitted again.

    Returns:
        One :class:`SweepResult` per trial, in the order of ``trials``.

    Raises:
        NotPicklableError: ``run`` does not pickle.
        ClusterError: a trial lost its worker more than ``retries`` times, or the executor broke.
        Exception: whatever ``run`` raised for a trial, as it raised it.
    """
    check_picklable("distributed.sweep", run=run)
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
    todo = list(trials)
    attempts = dict.fromkeys((t.number for t in todo), 0)
    done: dict[int, SweepResult] = {}
    running: dict[Future[FitResult[Any]], Trial] = {}

    def submit(trial: Trial) -> None:
        attempts[trial.number] += 1
        try:
            running[executor.submit(run, trial.hparams)] = trial
        except (BrokenExecutor, RuntimeError) as err:
            raise ClusterError(
                f"distributed.sweep: the executor cannot take trial {trial.number}: {err}"
            ) from err

    for trial in todo:
        submit(trial)
    while running:
        finished, _ = wait(list(running), return_when="FIRST_COMPLETED")
        for fut in finished:
            trial = running.pop(fut)
            err = fut.exception()
            if err is None:
                done[trial.number] = _collect(trial, fut.result(), attempts[trial.number], checkpoint_dir)
            elif not _is_lost_worker(err):
                raise err
            elif attempts[trial.number] > retries:
                raise ClusterError(
                    f"distributed.sweep: trial {trial.number} {dict(trial.hparams)} lost its worker "
                    f"{attempts[trial.number]} times ({type(err).__name__}: {err})"
                ) from err
            else:
                submit(trial)
    return tuple(done[t.number] for t in todo)


def format_table(results: Sequence[SweepResult], columns: Sequence[str] | None = None) -> str:
    """The results as a text table: one row per trial, its hyperparameters and final logs.

    Args:
        results: what :func:`sweep` returned.
        columns: the final-log entries to show (all of them by default).
    """
    if not results:
        return "(no trials)"
    hp_names = list(dict.fromkeys(k for r in results for k in r.trial.hparams))
    if columns is None:
        columns = list(dict.fromkeys(k for r in results for k in r.final))
    log_names = list(columns)
    header = ["trial", *hp_names, *log_names]
    rows = [
        [str(r.trial.number)]
        + [_cell(r.trial.hparams.get(k, "")) for k in hp_names]
        + [_cell(r.final.get(k, float("nan"))) for k in log_names]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *rows]]
    return "\n".join(lines)


def _cell(value: HParam) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
