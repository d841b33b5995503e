"""``fit``: training as a fold of the pure step over the batches of each epoch.

Randomness is derived, never carried: epoch ``e`` is shuffled by ``fold_in(k_shuffle, e)`` and step
``s`` uses ``fold_in(k_step, s)``, where ``(k_shuffle, k_step) = split(key)``. Since the training
state records ``epoch`` and ``step``, a run resumed from a checkpoint of its training state draws
exactly the keys the uninterrupted run would have drawn. What else the fold carries from one epoch
to the next is the callbacks' states (early stopping's patience count and best state); resumed with
those too (:class:`FitCheckpoint`, :func:`init_fit_checkpoint`), the run ends bit-identical to the
uninterrupted one, callbacks and all.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from functools import partial, reduce
from typing import Any, Generic, NamedTuple, TypeVar, cast

from functional_dl import checkpoint
from functional_dl.errors import DomainError, ParamsError
from functional_dl.losses import LossFn
from functional_dl.optim.base import Optimizer, check_optimizer
from functional_dl.optim.hyperparams import current_learning_rate
from functional_dl.random import fold_in, split
from functional_dl.train.callbacks import Callback, EpochEnd
from functional_dl.train.data import as_batch, check_count, minibatches, num_batches
from functional_dl.train.progress import Progress, Reporter, reporter
from functional_dl.train.step import (
    Batch,
    Logs,
    Metric,
    Penalty,
    TrainState,
    TrainStepFn,
    ValueAndGradFn,
    train_step,
)
from functional_dl.types import Key, Layer

__all__ = ["FitCheckpoint", "FitResult", "History", "fit", "history_of", "init_fit_checkpoint"]

S = TypeVar("S")

#: Per-epoch values of each log entry: ``history["loss"][e]`` is the mean training loss of epoch ``e``.
History = Mapping[str, tuple[float, ...]]


class FitResult(NamedTuple, Generic[S]):
    """What :func:`fit` returns: the final training state, the per-epoch history, the callback states.

    Read it by name (``result.train_state``, ``result.history``): it has three fields, so the two-name
    unpacking ``train_state, history = fit(...)`` raises ``ValueError`` rather than dropping a field.

    Attributes:
        train_state: the training state fit ended with (the best one if early stopping restored it).
        history: per-epoch log values of this call.
        callback_states: the state of each callback, in the order of ``callbacks``, at the end;
            pass it as ``callback_states`` to a later ``fit`` that continues this run.
        restored_epoch: the epoch whose end state a callback restored (early stopping's best
            epoch, 0-based, as logged under ``"restored_epoch"``), or ``None`` if none was.
    """

    train_state: TrainState[S]
    history: History
    callback_states: tuple[object, ...]
    restored_epoch: int | None = None


class FitCheckpoint(NamedTuple, Generic[S]):
    """What ``fit`` carries from one epoch to the next: all it needs to resume a run bit for bit.

    :func:`~functional_dl.train.save_checkpoints` saves one after an epoch's callbacks have run;
    load it with ``checkpoint.load(path, template=init_fit_checkpoint(start, callbacks))``.

    Attributes:
        train_state: the training state the next epoch starts from.
        callback_states: the state of each callback, in the order of ``callbacks``.
    """

    train_state: TrainState[S]
    callback_states: tuple[object, ...]


def init_fit_checkpoint(train_state: TrainState[S], callbacks: Sequence[Callback]) -> FitCheckpoint[S]:
    """The carry of a run before its first epoch: ``train_state`` and each callback's ``init``.

    Its structure (types, keys, shapes, dtypes) is that of every later carry of the same run, so it
    is the template to load a saved :class:`FitCheckpoint` against; this is also what ``fit``
    starts from when it is given no ``callback_states``.

    Args:
        train_state: the state the original run started from (for example
            :func:`~functional_dl.train.init_train_state`); only its structure matters for a template.
        callbacks: the callbacks of the run, in the same order.
    """
    return FitCheckpoint(train_state, tuple(cb.init(train_state) for cb in callbacks))


class _EpochAcc(NamedTuple):
    train_state: TrainState[Any]
    sums: Mapping[str, float]  # sum over batches of batch_size * value
    samples: int  # samples seen


def _step_fold(
    step: TrainStepFn[Any], step_key: Key, report: Reporter, acc: _EpochAcc, batch: Batch
) -> _EpochAcc:
    ts, logs = step(acc.train_state, batch, fold_in(step_key, acc.train_state.step))
    report.batch(logs)
    n = batch[0].shape[0]
    sums = {k: acc.sums.get(k, 0.0) + n * v for k, v in logs.items()}
    return _EpochAcc(ts, sums, acc.samples + n)


def _returned_state(returned: object, current: TrainState[S]) -> TrainState[S]:
    if not isinstance(returned, TrainState) or type(returned.opt_state.inner) is not type(
        current.opt_state.inner
    ):
        raise ParamsError("fit", "a callback returned a train_state that is not one fit gave it")
    # An earlier state of this same run (the best so far): the same optimizer, so the same type.
    return cast(TrainState[S], returned)


def _learning_rate(opt_state: object) -> Logs:
    """``{"lr": rate}`` if the optimizer state exposes one learning rate in force, else ``{}``."""
    try:
        return {"lr": current_learning_rate(opt_state)}
    except ValueError:  # no recorded rate, or one per parameter group: nothing single to log
        return {}


def history_of(records: Sequence[Logs]) -> History:
    """Per-epoch log records turned into one tuple of values per entry (missing values are NaN).

    Example:
        >>> history_of([{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}])
        {'loss': (1.0, 0.5), 'val_loss': (nan, 0.7)}
    """
    names = list(dict.fromkeys(k for r in records for k in r))
    # One NaN object for every gap: tuples compare items by identity first, so two histories with
    # gaps in the same places compare equal (a fresh float("nan") is unequal to every other).
    return {k: tuple(r.get(k, math.nan) for r in records) for k in names}


def fit(
    net: Layer[Any],
    loss: LossFn,
    opt: Optimizer[S],
    train_state: TrainState[S],
    data: Batch,
    *,
    key: Key,
    epochs: int,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    metrics: Mapping[str, Metric] | None = None,
    penalty: Penalty | None = None,
    callbacks: Sequence[Callback] = (),
    callback_states: Sequence[object] | None = None,
    progress: Progress = "auto",
    grad_fn: ValueAndGradFn | None = None,
) -> FitResult[S]:
    """Train for ``epochs`` more epochs from ``train_state``; return the final state and history.

    Each epoch folds :func:`~functional_dl.train.train_step` over the mini-batches of ``data``,
    then runs the callbacks (validation, early stopping) in order. The epoch's logs hold the
    means of the step logs (``"loss"``, metrics, ``"penalty"``), then ``"lr"``, the learning rate in
    force at the epoch's first step when the optimizer state exposes a single one
    (:func:`~functional_dl.optim.current_learning_rate`), then what the callbacks add. When a
    callback hands back the training state of an earlier epoch (early stopping restoring the
    best), that epoch's index is logged as ``"restored_epoch"`` and returned in the result.

    Args:
        net: the network.
        loss: ``(pred, target) -> (value, dpred)``, mean over the batch.
        opt: the optimizer whose state ``train_state.opt_state`` holds.
        train_state: where to start (:func:`~functional_dl.train.init_train_state`, or a checkpoint).
        data: ``(x, y)`` training data.
        key: the run's key; with the state's epoch and step it fixes every shuffle and dropout mask.
        epochs: how many epochs to run from ``train_state.epoch``.
        batch_size: samples per step.
        shuffle: reshuffle every epoch.
        drop_last: skip each epoch's final incomplete batch.
        metrics: named ``(pred, target) -> float`` functions, averaged over each epoch's batches.
        penalty: ``(params) -> (value, grads)`` added to the loss (an L2 term); logged as ``"penalty"``.
        callbacks: run after each epoch, in order.
        callback_states: the callbacks' states to continue from (a saved
            :class:`FitCheckpoint`'s, or an earlier :class:`FitResult`'s), one per callback;
            ``None`` starts each callback afresh with ``cb.init(train_state)``.
        progress: ``"auto"`` (tqdm if installed, else lines), ``"bar"``, ``"lines"``, ``"none"``.
        grad_fn: computes each batch's loss and grads in place of ``value_and_grad(net, loss)``
            (see :func:`~functional_dl.train.train_step`); :func:`functional_dl.distributed.fit`
            passes its data-parallel one here.

    Returns:
        ``FitResult(state, history, callback_states, restored_epoch)``; ``history[name][i]`` is the
        value of ``name`` in the i-th epoch of this call (``"loss"``, each metric, ``"lr"``, and
        what callbacks added, like ``"val_loss"``; NaN in the epochs without it).

    Raises:
        DomainError: ``callback_states`` does not hold one state per callback.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, losses, metrics, optim, random, serial
        >>> from functional_dl.train import init_train_state
        >>> x = random.normal(random.key(0), (64, 2))
        >>> y = (x[:, :1] > 0).astype(np.float32)
        >>> net = serial(L.dense(8), L.relu(), L.dense(1))
        >>> _, params = net.init(random.key(1), (None, 2))
        >>> opt = optim.adam(0.05)
        >>> result = fit(net, losses.sigmoid_binary_cross_entropy, opt, init_train_state(opt, params),
        ...              (x, y), key=random.key(2), epochs=20, batch_size=16,
        ...              metrics={"accuracy": metrics.accuracy}, progress="none")
        >>> result.train_state.epoch, result.train_state.step, sorted(result.history)
        (20, 80, ['accuracy', 'loss', 'lr'])
        >>> result.history["accuracy"][-1] > 0.9
        True
    """
    epochs = check_count("fit", "epochs", epochs, 0)
    batch_size = check_count("fit", "batch_size", batch_size, 1)
    data = as_batch("fit", data)
    check_optimizer(opt, "fit")
    step = train_step(net, loss, opt, metrics, penalty, grad_fn=grad_fn)
    shuffle_key, step_key = split(key, 2)
    report = reporter(progress)
    if callback_states is None:
        cb_states = list(init_fit_checkpoint(train_state, callbacks).callback_states)
    elif len(callback_states) != len(callbacks):
        raise DomainError(
            "fit",
            f"got {len(callback_states)} callback_states for {len(callbacks)} callbacks "
            "(one state per callback, in the same order)",
        )
    else:
        cb_states = list(callback_states)
    last = train_state.epoch + epochs
    n_batches = num_batches(data[0].shape[0], batch_size, drop_last)
    records: list[Logs] = []
    ts = train_state
    restored_epoch: int | None = None
    for _ in range(epochs):
        epoch, started = ts.epoch, time.perf_counter()
        lr = _learning_rate(ts.opt_state)
        report.start_epoch(epoch, last, n_batches)
        batches = minibatches(fold_in(shuffle_key, epoch), data, batch_size, shuffle, drop_last)
        acc = reduce(partial(_step_fold, step, step_key, report), batches, _EpochAcc(ts, {}, 0))
        ts = acc.train_state._replace(epoch=epoch + 1)
        logs: Logs = {**{k: v / max(acc.samples, 1) for k, v in acc.sums.items()}, **lr}
        stop = False
        save_to: list[str] = []
        for i, cb in enumerate(callbacks):
            result = cb.on_epoch_end(cb_states[i], EpochEnd(epoch, logs, ts.params, ts.buffers, ts))
            cb_states[i] = result.callback_state
            logs = {**logs, **result.logs}
            stop = stop or result.stop
            if result.train_state is not None:
                returned = _returned_state(result.train_state, ts)
                if returned.epoch != ts.epoch:  # the state after an earlier epoch: a restore
                    restored_epoch = returned.epoch - 1
                    logs = {**logs, "restored_epoch": float(restored_epoch)}
                ts = returned
            if result.save_to is not None:
                save_to.append(result.save_to)
        # Saved only now that every callback has run: the file holds exactly the next epoch's carry.
        for path in save_to:
            _save_run(path, FitCheckpoint(ts, tuple(cb_states)))
        records.append(logs)
        report.end_epoch(epoch, last, logs, time.perf_counter() - started)
        if stop:
            break
    return FitResult(ts, history_of(records), tuple(cb_states), restored_epoch)


def _save_run(path: str, run: FitCheckpoint[Any]) -> None:
    """Save ``run`` to ``path``, creating its directory first (as PyTorch Lightning's checkpoints do).

    The first save comes only after a whole epoch, so a missing directory (``"runs/exp1/"`` or a
    ``{epoch}`` in a directory name) would otherwise fail the run late, with nothing saved.
    """
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    checkpoint.save(path, run)
