"""Training: a pure step, reproducible mini-batches, ``fit`` as a fold, evaluation and callbacks.

Typical use::

    from functional_dl import train
    ts = train.init_train_state(opt, params)
    result = train.fit(net, loss, opt, ts, (x, y), key=key, epochs=10, batch_size=32,
                       metrics={"accuracy": metrics.accuracy},
                       callbacks=[train.validation(net, loss, (x_val, y_val)), train.early_stopping()])
    result.history["val_loss"]

``reduce_lr_on_plateau(monitor)`` shows a log entry to the optimizer's
:func:`~functional_dl.optim.reduce_on_plateau` after each epoch (PyTorch's ``ReduceLROnPlateau``);
``history["lr"]`` records the rate in force.

The training state is one value (optimizer state with the params, non-trained state, step, epoch);
with the callbacks' states it is all a run carries from one epoch to the next (a
:class:`FitCheckpoint`). Save it with :func:`save_checkpoints`, load it against
:func:`init_fit_checkpoint`, and ``fit(..., callback_states=...)`` resumes bit-identically.
"""

from functional_dl.train.callbacks import (
    Callback,
    CallbackResult,
    EarlyStoppingState,
    EpochEnd,
    OnEpochEndFn,
    early_stopping,
    reduce_lr_on_plateau,
    save_checkpoints,
    validation,
)
from functional_dl.train.data import minibatches, num_batches
from functional_dl.train.evaluate import evaluate, predict
from functional_dl.train.loop import FitCheckpoint, FitResult, History, fit, history_of, init_fit_checkpoint
from functional_dl.train.progress import Progress, format_logs
from functional_dl.train.step import (
    Batch,
    Logs,
    Metric,
    Penalty,
    TrainState,
    TrainStepFn,
    ValueAndGrad,
    ValueAndGradFn,
    init_train_state,
    train_step,
    value_and_grad,
)

__all__ = [
    "Batch",
    "Callback",
    "CallbackResult",
    "EarlyStoppingState",
    "EpochEnd",
    "FitCheckpoint",
    "FitResult",
    "History",
    "Logs",
    "Metric",
    "OnEpochEndFn",
    "Penalty",
    "Progress",
    "TrainState",
    "TrainStepFn",
    "ValueAndGrad",
    "ValueAndGradFn",
    "early_stopping",
    "evaluate",
    "fit",
    "format_logs",
    "history_of",
    "init_fit_checkpoint",
    "init_train_state",
    "minibatches",
    "num_batches",
    "predict",
    "reduce_lr_on_plateau",
    "save_checkpoints",
    "train_step",
    "validation",
    "value_and_grad",
]
