"""Callbacks for :func:`~functional_dl.train.fit`: pure functions of their own state, run after each epoch.

A :class:`Callback` is a pair ``init(train_state) -> state`` and ``on_epoch_end(state, end) ->
CallbackResult``, like an optimizer's transform (``opt.init(params)``): it keeps what it needs (the
best loss so far, a patience counter) in a value that ``fit`` threads through, and it acts only
through what it returns: more entries for the epoch's logs, a request to stop, a training state to
continue from (restoring the best one), or a file to save the run to. Callbacks run in order, each
seeing the logs of those before it, so put :func:`validation` before :func:`early_stopping` that
watches ``"val_loss"``.

A callback's state is plain data whose *structure* (types, keys, shapes, dtypes) is fixed by
``init``; only values change from epoch to epoch. The states are then saved with the training state
(:func:`save_checkpoints`) and loaded against a template built before training
(:func:`~functional_dl.train.init_fit_checkpoint`), and a resumed run continues bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol

from functional_dl._argcheck import bounded, flag, one_of, positive_int, text
from functional_dl.errors import DomainError, MissingError, ParamsError
from functional_dl.losses import LossFn
from functional_dl.optim.plateau import ReduceOnPlateauState, observe_loss
from functional_dl.optim.state_tree import find_states
from functional_dl.train.evaluate import evaluate
from functional_dl.train.step import Batch, Logs, Metric, TrainState
from functional_dl.types import Buffers, Layer, Params

__all__ = [
    "Callback",
    "CallbackResult",
    "EarlyStoppingState",
    "EpochEnd",
    "OnEpochEndFn",
    "early_stopping",
    "reduce_lr_on_plateau",
    "save_checkpoints",
    "validation",
]


class EpochEnd(NamedTuple):
    """What a callback sees after an epoch.

    Attributes:
        epoch: the index of the epoch just finished (0-based).
        logs: the epoch's training logs plus entries added by earlier callbacks.
        params: the params after the epoch.
        buffers: the network's buffers (non-trained state) after the epoch.
        train_state: the whole :class:`~functional_dl.train.TrainState` (typed ``object`` so that
            one callback serves every optimizer); keep it to hand it back as ``train_state``.
    """

    epoch: int
    logs: Logs
    params: Params
    buffers: Buffers
    train_state: object


class CallbackResult(NamedTuple):
    """What a callback returns.

    Attributes:
        callback_state: the callback's new state.
        logs: entries to add to the epoch's logs (``{"val_loss": 0.4}``).
        stop: ask ``fit`` to stop after this epoch.
        train_state: a training state for ``fit`` to continue from (and return), or ``None``; it
            must be one that ``fit`` passed in an :class:`EpochEnd` of this run (or that was saved
            in a callback state of a run this one resumes), or one made from it with a new
            optimizer state of the same structure (as :func:`reduce_lr_on_plateau` does).
        save_to: a file name, or ``None``: ask ``fit`` to save the run there once *every* callback
            has run this epoch, as a :class:`~functional_dl.train.FitCheckpoint` of the training
            state and all callback states it continues with, so a callback's place in the list
            does not change what is saved.
    """

    callback_state: object
    logs: Logs
    stop: bool = False
    train_state: object = None
    save_to: str | None = None


class OnEpochEndFn(Protocol):
    """``(state, end) -> CallbackResult``: the type of :attr:`Callback.on_epoch_end`, for own callbacks."""

    def __call__(self, state: object, end: EpochEnd, /) -> CallbackResult: ...


class Callback(NamedTuple):
    """A callback: ``init`` and ``on_epoch_end`` grouped so they can be named.

    ``init(train_state)`` gives the state before the first epoch from the training state ``fit``
    starts from (as ``opt.init(params)`` does from the params), so the state can hold training
    states with a structure known before training. The state is typed ``object`` here so that
    callbacks of different kinds fit in one list; each callback checks that it got back its own
    kind of state.
    """

    init: Callable[[object], object]
    on_epoch_end: OnEpochEndFn


def _no_state(train_state: object, /) -> None:
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
        net, loss, end.params, data, buffers=end.buffers, batch_size=batch_size, metrics=dict(metrics)
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
    """Evaluate on held-out ``data`` after each epoch; adds ``val_loss`` and ``val_<metric>`` to the logs.

    Raises:
        DomainError: when ``net`` or ``loss`` is not callable as such, ``metrics`` is not a mapping,
            ``batch_size`` is neither ``None`` nor a positive int, or ``prefix`` not a string.
    """
    if not isinstance(net, Layer) or not callable(loss):
        raise DomainError("validation", f"needs a layer and a loss function, got {net!r} and {loss!r}")
    if metrics is not None and not isinstance(metrics, Mapping):
        raise DomainError("validation", f"metrics must map names to metric functions, got {metrics!r}")
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size", "validation")
    if not isinstance(prefix, str):
        raise DomainError("validation", f"prefix must be a string, got {prefix!r}")
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
    """Best value seen, when, how many epochs since, and the training state at the best epoch.

    Attributes:
        best: the best ``sign * logs[monitor]`` so far (``sign`` is -1 for ``mode="max"``), so
            lower is always better; ``inf`` before the first epoch.
        best_epoch: the epoch of ``best``; -1 before any epoch improved on ``inf``.
        wait: epochs since ``best_epoch`` without an improvement.
        best_train_state: with ``restore_best``, the training state after ``best_epoch``, and the
            state ``fit`` started from while ``best_epoch`` is -1 (never restored then): always a
            training state, so a checkpoint template built before training matches a saved state.
            ``None`` without ``restore_best``.
    """

    best: float
    best_epoch: int
    wait: int
    best_train_state: object


def _monitored(callback: str, monitor: str, logs: Logs) -> float:
    if monitor not in logs:
        raise MissingError(callback, f"no {monitor!r} in the logs {sorted(logs)} (add validation() first?)")
    # float(): a NumPy scalar in the logs would change a state's structure, and so its checkpoint.
    return float(logs[monitor])


def _early_init(train_state: object, /, *, restore_best: bool) -> EarlyStoppingState:
    return EarlyStoppingState(math.inf, -1, 0, train_state if restore_best else None)


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
        raise ParamsError("early_stopping", f"got a state of type {type(state).__name__}, not its own")
    value = sign * _monitored("early_stopping", monitor, end.logs)  # minimise ``value`` whatever the mode
    if value < state.best - min_delta:
        kept = end.train_state if restore_best else None
        return CallbackResult(EarlyStoppingState(value, end.epoch, 0, kept), {})
    waited = state._replace(wait=state.wait + 1)
    if waited.wait < patience:
        return CallbackResult(waited, {})
    # No epoch improved (the monitor was NaN throughout): there is no best state to restore.
    restored = state.best_train_state if state.best_epoch >= 0 else None
    return CallbackResult(waited, {}, stop=True, train_state=restored)


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

    Raises:
        DomainError: for a ``monitor`` that is not a non-empty string, a ``patience`` that is not a
            positive int, an unknown ``mode``, a negative or non-finite ``min_delta``, or a
            non-bool ``restore_best``.
    """
    where = "early_stopping"
    monitor = text(monitor, "monitor", where)
    patience = positive_int(patience, "patience", where)
    min_delta = bounded(min_delta, "min_delta", where, 0.0)
    restore_best = flag(restore_best, "restore_best", where)
    sign = 1.0 if one_of(mode, "mode", where, ("min", "max")) == "min" else -1.0
    on_end = partial(
        _early_end,
        monitor=monitor,
        patience=patience,
        sign=sign,
        min_delta=min_delta,
        restore_best=restore_best,
    )
    return Callback(partial(_early_init, restore_best=restore_best), on_end)


def _plateau_init(train_state: object, /) -> None:
    opt_state = train_state.opt_state if isinstance(train_state, TrainState) else None
    if next(find_states(opt_state, ReduceOnPlateauState), None) is None:
        raise ParamsError(
            "reduce_lr_on_plateau",
            "the optimizer has no reduce_on_plateau transformation to drive; "
            "build it as optimizer(chain(..., scale_by_learning_rate(lr), reduce_on_plateau(...)))",
        )


def _plateau_end(state: object, end: EpochEnd, /, *, monitor: str) -> CallbackResult:
    value = _monitored("reduce_lr_on_plateau", monitor, end.logs)
    ts = end.train_state
    if not isinstance(ts, TrainState):
        raise ParamsError("reduce_lr_on_plateau", f"got a train_state of type {type(ts).__name__}")
    return CallbackResult(None, {}, train_state=ts._replace(opt_state=observe_loss(ts.opt_state, value)))


def reduce_lr_on_plateau(monitor: str = "val_loss") -> Callback:
    """After each epoch, show ``logs[monitor]`` to the optimizer's reduce-on-plateau.

    This is ``torch.optim.lr_scheduler.ReduceLROnPlateau`` for :func:`~functional_dl.train.fit`.
    The rule and its settings belong to the optimizer's
    :func:`~functional_dl.optim.reduce_on_plateau` transformation (``mode``, ``factor``,
    ``patience``, ``threshold`` and ``threshold_mode``, ``cooldown``, and ``min_scale``, which is
    PyTorch's ``min_lr`` divided by the base learning rate); its counters and the factor in force
    live in the optimizer state. The callback only hands back the training state with the new
    optimizer state (:func:`~functional_dl.optim.observe_loss`), so the next epoch's updates use
    the new rate, the ``"lr"`` that ``fit`` logs shows it, and a checkpoint of the training state
    resumes it. The callback itself keeps no state.

    Args:
        monitor: the log entry to watch; put :func:`validation` first for ``"val_loss"``.

    Raises:
        DomainError: when ``monitor`` is not a non-empty string.
        ParamsError: (a ``ValueError``, from ``fit``, before the first epoch) the optimizer has no
            reduce-on-plateau.
        DomainError: (after an epoch) the monitored value is NaN.
        MissingError: (after an epoch) the logs have no ``monitor``.

    Example::

        opt = optimizer(chain(scale_by_adam(), scale_by_learning_rate(1e-3),
                              reduce_on_plateau(0.5, patience=3, cooldown=1)))
        fit(net, loss, opt, init_train_state(opt, params), data, key=key, epochs=50,
            batch_size=32, callbacks=[validation(net, loss, val), reduce_lr_on_plateau()])
    """
    monitor = text(monitor, "monitor", "reduce_lr_on_plateau")
    return Callback(_plateau_init, partial(_plateau_end, monitor=monitor))


def _save_end(state: object, end: EpochEnd, /, *, path: str, every: int) -> CallbackResult:
    done = end.epoch + 1
    return CallbackResult(None, {}, save_to=path.format(epoch=done) if done % every == 0 else None)


def save_checkpoints(path: str, *, every: int = 1) -> Callback:
    """Save the run every ``every`` epochs: the training state and the state of every callback.

    ``fit`` writes the file with :func:`functional_dl.checkpoint.save` once all callbacks have run
    for the epoch, wherever this one is in the list: a
    :class:`~functional_dl.train.FitCheckpoint` ``(train_state, callback_states)`` holding exactly
    what ``fit`` continues with (early stopping's patience count, best value and best state
    included).

    Args:
        path: the file name; ``{epoch}`` in it is replaced by the number of epochs done
            (``"run/epoch{epoch:03d}.npz"``), otherwise each save replaces the last, atomically.
            Missing directories are created at each save, as PyTorch Lightning's
            ``ModelCheckpoint`` does.
        every: save after every ``every``-th epoch.

    Resume by loading against a template built like the original run, and pass both parts to
    ``fit`` with the same ``key`` and callbacks; the run continues bit for bit as if never
    interrupted::

        start = init_train_state(opt, params, state)
        saved = checkpoint.load(path, template=init_fit_checkpoint(start, callbacks))
        fit(net, loss, opt, saved.train_state, data, key=key, callbacks=callbacks,
            callback_states=saved.callback_states, epochs=total - saved.train_state.epoch, ...)

    Raises:
        DomainError: when ``path`` is not a non-empty string or ``every`` not a positive int.
    """
    path = text(path, "path", "save_checkpoints")
    every = positive_int(every, "every", "save_checkpoints")
    return Callback(_no_state, partial(_save_end, path=path, every=every))
