"""Callbacks for :func:`~functional_dl.train.fit`: pure functions of their own state, run after each epoch.

A :class:`Callback` is a pair ``init() -> state`` and ``on_epoch_end(state, end) -> CallbackResult``,
like an optimizer's transform: it keeps what it needs (the best loss so far, a patience counter) in
a value that ``fit`` threads through, and it acts only through what it returns: more entries for the
epoch's logs, a request to stop, or a training state to continue from (restoring the best one).
Callbacks run in order, each seeing the logs of those before it, so put :func:`validation` before
:func:`early_stopping` that watches ``"val_loss"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol

from functional_dl import checkpoint
from functional_dl.losses import LossFn
from functional_dl.train.evaluate import evaluate
from functional_dl.train.step import Batch, Logs, Metric
from functional_dl.types import Layer, Params, State

__all__ = [
    "Callback",
    "CallbackResult",
    "EarlyStoppingState",
    "EpochEnd",
    "early_stopping",
    "save_checkpoints",
    "validation",
]


class EpochEnd(NamedTuple):
    """What a callback sees after an epoch.

    Attributes:
        epoch: the index of the epoch just finished (0-based).
        logs: the epoch's training logs plus entries added by earlier callbacks.
        params: the params after the epoch.
        state: the non-trained state after the epoch.
        train_state: the whole :class:`~functional_dl.train.TrainState` (typed ``object`` so that
            one callback serves every optimizer); keep it to hand it back as ``train_state``.
    """

    epoch: int
    logs: Logs
    params: Params
    state: State
    train_state: object


class CallbackResult(NamedTuple):
    """What a callback returns.

    Attributes:
        state: its new state.
        logs: entries to add to the epoch's logs (``{"val_loss": 0.4}``).
        stop: ask ``fit`` to stop after this epoch.
        train_state: a training state for ``fit`` to continue from (and return), or ``None``; it
            must be one that ``fit`` passed in an :class:`EpochEnd` of this run.
    """

    state: object
    logs: Logs
    stop: bool = False
    train_state: object = None


class OnEpochEndFn(Protocol):
    """``(state, end) -> CallbackResult``."""

    def __call__(self, state: object, end: EpochEnd, /) -> CallbackResult: ...


class Callback(NamedTuple):
    """A callback: ``init`` and ``on_epoch_end`` grouped so they can be named.

    The state is typed ``object`` here so that callbacks of different kinds fit in one list; each
    callback checks that it got back its own kind of state.
    """

    init: Callable[[], object]
    on_epoch_end: OnEpochEndFn


def _no_state() -> None:
    return None


def _validation_end(
    state: object,
    end: EpochEnd,
    /,
    *,
    net: Layer[Any],
    loss: LossFn,
    data: Batch,
    metrics: tuple[tuple[str, Metric], ...],
    batch_size: int | None,
    prefix: str,
) -> CallbackResult:
    logs = evaluate(
        net, loss, end.params, data, state=end.state, batch_size=batch_size, metrics=dict(metrics)
    )
    return CallbackResult(None, {prefix + k: v for k, v in logs.items()})


def validation(
    net: Layer[Any],
    loss: LossFn,
    data: Batch,
    *,
    metrics: Mapping[str, Metric] | None = None,
    batch_size: int | None = None,
    prefix: str = "val_",
) -> Callback:
    """Evaluate on held-out ``data`` after each epoch; adds ``val_loss`` and ``val_<metric>`` to the logs."""
    return Callback(
        _no_state,
        partial(
            _validation_end,
            net=net,
            loss=loss,
            data=data,
            metrics=tuple((metrics or {}).items()),
            batch_size=batch_size,
            prefix=prefix,
        ),
    )


class EarlyStoppingState(NamedTuple):
    """Best value seen, when, how many epochs since, and the training state at the best epoch."""

    best: float
    best_epoch: int
    wait: int
    best_train_state: object  # the TrainState of the best epoch, or None


def _early_init() -> EarlyStoppingState:
    return EarlyStoppingState(math.inf, -1, 0, None)


def _early_end(
    state: object,
    end: EpochEnd,
    /,
    *,
    monitor: str,
    patience: int,
    sign: float,
    min_delta: float,
    restore_best: bool,
) -> CallbackResult:
    if not isinstance(state, EarlyStoppingState):
        raise TypeError(f"early_stopping: got a state of type {type(state).__name__}, not its own")
    if monitor not in end.logs:
        raise KeyError(
            f"early_stopping: no {monitor!r} in the logs {sorted(end.logs)} (add validation() first?)"
        )
    value = sign * end.logs[monitor]  # minimise ``value`` whatever the mode
    if value < state.best - min_delta:
        kept = end.train_state if restore_best else None
        return CallbackResult(EarlyStoppingState(value, end.epoch, 0, kept), {})
    waited = state._replace(wait=state.wait + 1)
    if waited.wait < patience:
        return CallbackResult(waited, {})
    return CallbackResult(waited, {}, stop=True, train_state=state.best_train_state)


def early_stopping(
    monitor: str = "val_loss",
    *,
    patience: int = 5,
    mode: Literal["min", "max"] = "min",
    min_delta: float = 0.0,
    restore_best: bool = True,
) -> Callback:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: the log entry to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``).
        patience: epochs without improvement before stopping.
        mode: ``"min"`` if lower is better, ``"max"`` if higher is.
        min_delta: the smallest change that counts as an improvement.
        restore_best: on stopping, continue from (and return) the training state of the best epoch.
    """
    if patience < 1:
        raise ValueError(f"early_stopping: patience must be >= 1, got {patience}")
    sign = 1.0 if mode == "min" else -1.0
    on_end = partial(
        _early_end,
        monitor=monitor,
        patience=patience,
        sign=sign,
        min_delta=min_delta,
        restore_best=restore_best,
    )
    return Callback(_early_init, on_end)


def _save_end(state: object, end: EpochEnd, /, *, path: str, every: int) -> CallbackResult:
    done = end.epoch + 1
    if done % every == 0:
        checkpoint.save(path.format(epoch=done), end.train_state)
    return CallbackResult(None, {})


def save_checkpoints(path: str, *, every: int = 1) -> Callback:
    """Save the whole training state every ``every`` epochs with :func:`functional_dl.checkpoint.save`.

    Args:
        path: the file name; ``{epoch}`` in it is replaced by the number of epochs done
            (``"run/epoch{epoch:03d}.npz"``), otherwise each save replaces the last, atomically.
        every: save after every ``every``-th epoch.

    Resume with ``checkpoint.load(path, template=init_train_state(opt, params, state))`` and call
    ``fit`` with the same ``key``: the run continues bit for bit as if never interrupted.
    """
    if every < 1:
        raise ValueError(f"save_checkpoints: every must be >= 1, got {every}")
    return Callback(_no_state, partial(_save_end, path=path, every=every))
