"""``train.reduce_lr_on_plateau`` driving the optimizer's reduce-on-plateau from ``fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import checkpoint, losses, optim, train
from functional_dl import layers as L
from tests.test_checkpoint import assert_tree_identical

BASE_LR = 0.05


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1 * rng.standard_normal((48, 1), np.float32)
    return x, y


def _opt(**plateau: Any) -> optim.Optimizer[Any]:
    return optim.optimizer(
        optim.chain(
            optim.trace(0.9), optim.scale_by_learning_rate(BASE_LR), optim.reduce_on_plateau(**plateau)
        )
    )


def _fit(
    opt: optim.Optimizer[Any], epochs: int, start: train.TrainState[Any] | None = None, **kw: Any
) -> train.FitResult[Any]:
    net = fdl.serial(L.dense(4), L.tanh(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 3))
    return train.fit(
        net,
        losses.mean_squared_error,
        opt,
        start if start is not None else train.init_train_state(opt, params),
        _data(),
        key=fdl.random.key(1),
        epochs=epochs,
        batch_size=16,
        progress="none",
        **{"callbacks": [train.reduce_lr_on_plateau("loss")], **kw},
    )


# Large relative thresholds make "no improvement" common, so a short run sees several reductions.
SETTINGS: list[dict[str, Any]] = [
    {"factor": 0.5, "patience": 1, "threshold": 0.3},
    {"factor": 0.2, "patience": 0, "threshold": 0.2, "cooldown": 2},
    {"factor": 0.5, "patience": 0, "threshold": 0.1, "threshold_mode": "abs", "min_scale": 0.3},
    {"factor": 0.5, "patience": 1, "threshold": 0.3, "mode": "max"},
]


@pytest.mark.torch
@pytest.mark.parametrize("settings", SETTINGS)
def test_the_learning_rate_follows_torch_reduce_lr_on_plateau(settings: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    result = _fit(_opt(**settings), 12)
    param = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([param], lr=BASE_LR)
    theirs = {("min_lr" if k == "min_scale" else k): v for k, v in settings.items()}
    if "min_lr" in theirs:
        theirs["min_lr"] *= BASE_LR
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **theirs)
    torch_lrs = [BASE_LR]
    for loss in result.history["loss"][:-1]:
        sched.step(loss)
        torch_lrs.append(topt.param_groups[0]["lr"])
    assert result.history["lr"] == pytest.approx(torch_lrs, rel=1e-12)
    assert min(torch_lrs) < BASE_LR  # the run saw reductions


def test_the_reduced_rate_is_the_one_the_steps_use() -> None:
    settings = SETTINGS[0]
    reduced = _fit(_opt(**settings), 6)
    lrs = reduced.history["lr"]
    assert lrs[-1] < BASE_LR
    # The same run with the rates of each epoch injected by hand takes the same steps, bit for bit.
    opt = optim.optimizer(optim.inject_hyperparams(optim.sgd, learning_rate=BASE_LR, momentum=0.9))
    ts: train.TrainState[Any] | None = None
    for lr in lrs:
        if ts is not None:
            ts = ts._replace(opt_state=optim.set_hyperparams(ts.opt_state, learning_rate=lr))
        ts = _fit(opt, 1, ts, callbacks=[]).train_state
    assert ts is not None
    for k, v in reduced.train_state.params.items():
        np.testing.assert_allclose(ts.params[k], v, rtol=1e-12, atol=0)


def test_resumed_plateau_run_equals_uninterrupted(tmp_path: Path) -> None:
    opt = _opt(**SETTINGS[1])
    cbs = [train.reduce_lr_on_plateau("loss"), train.save_checkpoints(str(tmp_path / "e{epoch}.npz"))]
    straight = _fit(opt, 8, callbacks=cbs)
    template = train.init_fit_checkpoint(_fit(opt, 0).train_state, cbs)
    saved = checkpoint.load(tmp_path / "e3.npz", template=template)
    resumed = _fit(opt, 5, saved.train_state, callbacks=cbs, callback_states=saved.callback_states)
    assert_tree_identical(resumed.train_state.opt_state, straight.train_state.opt_state)
    assert resumed.history["lr"] == straight.history["lr"][3:]


def test_an_optimizer_without_reduce_on_plateau_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match=r"reduce_lr_on_plateau: the optimizer has no reduce_on_plateau"):
        _fit(optim.sgd(BASE_LR), 1)


def test_a_missing_monitor_is_named() -> None:
    with pytest.raises(KeyError, match=r"reduce_lr_on_plateau: no 'val_loss'"):
        _fit(_opt(), 1, callbacks=[train.reduce_lr_on_plateau()])
