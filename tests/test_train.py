from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import checkpoint, losses, metrics, optim, train
from functional_dl import layers as L
from functional_dl.testing import assert_bitwise_equal, numerical_gradient, snapshot
from tests.test_checkpoint import assert_tree_identical


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(np.float32)
    return x, y


def _net(with_state: bool = True) -> fdl.Layer[Any]:
    """A small classifier; with dropout and batch norm when the layer library provides them."""
    parts: list[fdl.Layer[Any]] = [L.dense(8)]
    if with_state and hasattr(L, "batch_norm1d"):
        parts.append(L.batch_norm1d())
    parts.append(L.relu())
    if with_state and hasattr(L, "dropout"):
        parts.append(L.dropout(0.2))
    parts.append(L.dense(1))
    return fdl.serial(*parts)


def _opt() -> optim.Optimizer[Any]:
    adam = getattr(optim, "adam", None)
    return adam(0.01) if adam is not None else optim.sgd(0.1)


def _start(net: fdl.Layer[Any], opt: optim.Optimizer[Any]) -> train.TrainState[Any]:
    _, params, state = net.init_with_buffers(fdl.random.key(1), (None, 4))
    return train.init_train_state(opt, params, state)


def _fit(ts: train.TrainState[Any], epochs: int, key: int = 3, **kw: Any) -> train.FitResult[Any]:
    return train.fit(
        _net(),
        losses.sigmoid_binary_cross_entropy,
        _opt(),
        ts,
        _data(),
        key=fdl.random.key(key),
        epochs=epochs,
        batch_size=16,
        metrics={"accuracy": metrics.accuracy},
        **{"progress": "none", **kw},
    )


def _assert_same_train_state(a: train.TrainState[Any], b: train.TrainState[Any]) -> None:
    assert (a.step, a.epoch, a.opt_state.step) == (b.step, b.epoch, b.opt_state.step)
    assert_bitwise_equal(a.params, b.params, "params")
    assert_bitwise_equal(a.buffers, b.buffers, "buffers")
    assert_tree_identical(a.opt_state.inner, b.opt_state.inner)


def test_value_and_grad_matches_finite_differences() -> None:
    net = fdl.serial(L.dense(3), L.tanh(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 4))
    params = fdl.params.cast(params, np.float64)
    x, y = _data(5)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    fn = train.value_and_grad(net, losses.sigmoid_binary_cross_entropy)
    out = fn(params, x64, y64)
    assert out.pred.shape == (5, 1)
    for name in params:

        def loss_at(v: np.ndarray, name: str = name) -> float:
            return fn({**params, name: v}, x64, y64).loss

        numeric = numerical_gradient(loss_at, params[name])
        np.testing.assert_allclose(out.grads[name], numeric, rtol=1e-6, atol=1e-9)


def test_train_step_is_pure_and_picklable() -> None:
    net, opt = _net(), _opt()
    ts = _start(net, opt)
    step = train.train_step(net, losses.sigmoid_binary_cross_entropy, opt, {"accuracy": metrics.accuracy})
    x, y = _data(16)
    before = snapshot(ts.params)
    ts1, logs1 = step(ts, (x, y), fdl.random.key(5))
    ts2, logs2 = pickle.loads(pickle.dumps(step))(ts, (x, y), fdl.random.key(5))
    assert_bitwise_equal(ts.params, before, "input params")
    assert ts.step == 0
    assert ts1.step == 1
    assert logs1 == logs2
    assert set(logs1) == {"loss", "accuracy"}
    _assert_same_train_state(ts1, ts2)
    assert not fdl.params.allclose(ts1.params, ts.params)


def test_minibatches_cover_every_sample_once_and_depend_on_the_key() -> None:
    x = np.arange(10.0).reshape(10, 1)
    y = np.arange(10)
    batches = list(train.minibatches(fdl.random.key(0), (x, y), 4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    order = np.concatenate([b[1] for b in batches])
    assert sorted(order.tolist()) == list(range(10))
    assert all(np.array_equal(b[0][:, 0], b[1]) for b in batches)
    again = np.concatenate([b[1] for b in train.minibatches(fdl.random.key(0), (x, y), 4)])
    other = np.concatenate([b[1] for b in train.minibatches(fdl.random.key(1), (x, y), 4)])
    assert np.array_equal(order, again)
    assert not np.array_equal(order, other)
    dropped = list(train.minibatches(fdl.random.key(0), (x, y), 4, drop_last=True))
    assert [len(b[1]) for b in dropped] == [4, 4]
    assert train.num_batches(10, 4, drop_last=True) == 2
    plain = list(train.minibatches(None, (x, y), 3, shuffle=False))
    assert [b[1].tolist() for b in plain] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    with pytest.raises(fdl.errors.ShapeError, match="y has 9"):
        list(train.minibatches(None, (x, y[:9]), 3))


def test_fit_is_bit_reproducible() -> None:
    net, opt = _net(), _opt()
    first = _fit(_start(net, opt), 3)
    second = _fit(_start(net, opt), 3)
    _assert_same_train_state(first.train_state, second.train_state)
    assert first.history == second.history
    assert len(first.history["loss"]) == 3
    assert first.history["loss"][-1] < first.history["loss"][0]
    other = _fit(_start(net, opt), 3, key=4)
    assert not fdl.params.allclose(other.train_state.params, first.train_state.params, rtol=0.0)


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path: Path) -> None:
    net, opt = _net(), _opt()
    straight = _fit(_start(net, opt), 4)
    half = _fit(_start(net, opt), 2)
    path = tmp_path / "train_state.npz"
    checkpoint.save(path, half.train_state)
    restored = checkpoint.load(path, template=_start(net, opt))
    assert isinstance(restored, train.TrainState)
    resumed = _fit(restored, 2)
    assert resumed.train_state.epoch == 4
    _assert_same_train_state(resumed.train_state, straight.train_state)
    assert half.history["loss"] + resumed.history["loss"] == straight.history["loss"]


def test_validation_and_early_stopping_restore_the_best_state() -> None:
    net, opt = _net(), _opt()
    val = _data(30, seed=1)
    # Training loss falls every epoch, so "higher is better" never improves after epoch 0.
    result = _fit(
        _start(net, opt),
        10,
        callbacks=[
            train.validation(
                net, losses.sigmoid_binary_cross_entropy, val, metrics={"accuracy": metrics.accuracy}
            ),
            train.early_stopping("loss", patience=2, mode="max"),
        ],
    )
    assert len(result.history["loss"]) == 3
    assert set(result.history) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy", "restored_epoch"}
    # Epoch 0 was the best: early stopping restored it after epoch 2, and fit says so.
    assert result.restored_epoch == 0
    assert result.history["restored_epoch"][2] == 0.0
    assert all(math.isnan(v) for v in result.history["restored_epoch"][:2])
    assert result.history["lr"] == (0.01, 0.01, 0.01)
    first_epoch = _fit(_start(net, opt), 1)
    _assert_same_train_state(result.train_state, first_epoch.train_state)
    logs = train.evaluate(
        net,
        losses.sigmoid_binary_cross_entropy,
        first_epoch.train_state.params,
        val,
        buffers=first_epoch.train_state.buffers,
        metrics={"accuracy": metrics.accuracy},
    )
    assert logs["loss"] == result.history["val_loss"][0]
    assert logs["accuracy"] == result.history["val_accuracy"][0]


def test_without_a_restore_fit_logs_none_and_the_learning_rate_follows_its_schedule() -> None:
    # 4 steps per epoch (60 samples, batch 16): the rate in force at each epoch's first step.
    schedule = optim.exponential_decay(0.1, 0.5, transition_steps=4, staircase=True)
    opt = optim.sgd(schedule)
    result = train.fit(
        _net(),
        losses.sigmoid_binary_cross_entropy,
        opt,
        _start(_net(), opt),
        _data(),
        key=fdl.random.key(3),
        epochs=3,
        batch_size=16,
        progress="none",
    )
    assert result.restored_epoch is None
    assert "restored_epoch" not in result.history
    assert result.history["lr"] == (0.1, 0.05, 0.025)


def test_early_stopping_without_its_monitor_says_so() -> None:
    net, opt = _net(), _opt()
    with pytest.raises(KeyError, match="val_loss"):
        _fit(_start(net, opt), 1, callbacks=[train.early_stopping()])


def test_predict_in_batches_equals_one_pass() -> None:
    net = _net()
    ts = _fit(_start(net, _opt()), 1).train_state
    x, _ = _data(37)
    whole = train.predict(net, ts.params, x, buffers=ts.buffers)
    sliced = train.predict(net, ts.params, x, buffers=ts.buffers, batch_size=8)
    np.testing.assert_allclose(sliced, whole, rtol=1e-6, atol=1e-6)


def test_progress_modes(capsys: pytest.CaptureFixture[str]) -> None:
    net, opt = _net(), _opt()
    _fit(_start(net, opt), 2)
    assert capsys.readouterr() == ("", "")
    _fit(_start(net, opt), 2, progress="lines")
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in out] == ["epoch 1/2", "epoch 2/2"]
    assert "accuracy" in out[0]
    pytest.importorskip("tqdm")
    _fit(_start(net, opt), 1, progress="bar")
    captured = capsys.readouterr()
    assert captured.out.startswith("epoch 1/1")
    assert "epoch 1/1" in captured.err  # the bar


def _l2(params: fdl.Params, lam: float = 0.1) -> tuple[float, fdl.Params]:
    weights = {k: v for k, v in params.items() if k.endswith(".w")}
    value = 0.5 * lam * sum(float(np.sum(w * w)) for w in weights.values())
    return value, {k: lam * w for k, w in weights.items()}


def test_penalty_gradient_is_added_and_logged() -> None:
    net = _net(with_state=False)
    opt = optim.sgd(0.5)
    ts = _start(net, opt)
    x, y = _data(16)
    loss = losses.sigmoid_binary_cross_entropy
    new, logs = train.train_step(net, loss, opt, penalty=_l2)(ts, (x, y), fdl.random.key(0))
    grads = train.value_and_grad(net, loss)(ts.params, x, y).grads
    for k, p in ts.params.items():
        expected = p - 0.5 * (grads[k] + (0.1 * p if k.endswith(".w") else 0))
        np.testing.assert_allclose(new.params[k], expected, rtol=1e-6, atol=1e-7)
    assert logs["penalty"] == pytest.approx(_l2(ts.params)[0])
    history = _fit(_start(_net(), _opt()), 2, penalty=_l2).history
    assert len(history["penalty"]) == 2


def test_save_checkpoints_callback_resumes_bit_for_bit(tmp_path: Path) -> None:
    net, opt = _net(), _opt()
    pattern = str(tmp_path / "epoch{epoch}.npz")
    callbacks = [train.save_checkpoints(pattern)]
    straight = _fit(_start(net, opt), 3, callbacks=callbacks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch1.npz", "epoch2.npz", "epoch3.npz"]
    template = train.init_fit_checkpoint(_start(net, opt), callbacks)
    from_one = checkpoint.load(tmp_path / "epoch1.npz", template=template)
    assert isinstance(from_one, train.FitCheckpoint)
    assert from_one.callback_states == (None,)
    resumed = _fit(from_one.train_state, 2, callbacks=callbacks, callback_states=from_one.callback_states)
    _assert_same_train_state(resumed.train_state, straight.train_state)
    last = checkpoint.load(tmp_path / "epoch3.npz", template=template)
    _assert_same_train_state(last.train_state, straight.train_state)
    # The training state alone is no longer the template: the error says which one is.
    expected = r"holds a functional_dl\.train\.loop\.FitCheckpoint, the template expects .*TrainState"
    with pytest.raises(fdl.errors.CheckpointError, match=expected):
        checkpoint.load(tmp_path / "epoch3.npz", template=_start(net, opt))


# Validation labels follow the opposite rule, so val_loss rises as training learns it: the best
# epoch comes early and early stopping then counts epochs of patience.
def _resume_callbacks(net: fdl.Layer[Any], pattern: str) -> list[train.Callback]:
    x, y = _data(30, seed=1)
    return [
        train.validation(net, losses.sigmoid_binary_cross_entropy, (x, 1.0 - y)),
        # Before early stopping on purpose: what is saved must not depend on the order.
        train.save_checkpoints(pattern),
        train.early_stopping("val_loss", patience=3, restore_best=True),
    ]


def _assert_same_early_stopping(a: object, b: object) -> None:
    assert isinstance(a, train.EarlyStoppingState)
    assert isinstance(b, train.EarlyStoppingState)
    assert (a.best, a.best_epoch, a.wait) == (b.best, b.best_epoch, b.wait)
    assert isinstance(a.best_train_state, train.TrainState)
    assert isinstance(b.best_train_state, train.TrainState)
    _assert_same_train_state(a.best_train_state, b.best_train_state)


def _without_frozen(node: object) -> object:
    if isinstance(node, dict):
        return {k: _without_frozen(v) for k, v in node.items() if k != "frozen"}
    if isinstance(node, list):
        return [_without_frozen(v) for v in node]
    return node


def _described(path: Path) -> object:
    """A checkpoint's tree as its header describes it: structure, scalars, each array's SHA-256.

    Leaves out whether a mapping was a FrozenParams: a train step returns the non-trained state as
    a plain dict where a loaded checkpoint has a FrozenParams; the contents must match.
    """
    return _without_frozen(checkpoint.read_header(path)["tree"])


def test_resume_with_callback_states_equals_uninterrupted_run(tmp_path: Path) -> None:
    net, opt, epochs, k = _net(), _opt(), 10, 2
    (tmp_path / "straight").mkdir()
    (tmp_path / "resumed").mkdir()
    straight_cbs = _resume_callbacks(net, str(tmp_path / "straight" / "epoch{epoch}.npz"))
    straight = _fit(_start(net, opt), epochs, callbacks=straight_cbs)
    stopped_after = len(straight.history["loss"])
    best = straight.callback_states[2]
    assert isinstance(best, train.EarlyStoppingState)
    # The scenario that needs the callback states: at the interruption early stopping is already
    # waiting (its best epoch is behind), and it stops later, before the epochs run out.
    assert best.best_epoch <= k - 2
    assert k < stopped_after < epochs
    assert straight.train_state.epoch == best.best_epoch + 1  # the best state was restored

    resumed_cbs = _resume_callbacks(net, str(tmp_path / "resumed" / "epoch{epoch}.npz"))
    template = train.init_fit_checkpoint(_start(net, opt), resumed_cbs)
    saved = checkpoint.load(tmp_path / "straight" / f"epoch{k}.npz", template=template)
    half = _fit(_start(net, opt), k, callbacks=resumed_cbs)
    # From disk, and from what an interrupted fit returned: both continue the same run.
    for train_state, states in [
        (saved.train_state, saved.callback_states),
        (half.train_state, half.callback_states),
    ]:
        assert train_state.epoch == k
        resumed = _fit(train_state, epochs - k, callbacks=resumed_cbs, callback_states=states)
        _assert_same_train_state(resumed.train_state, straight.train_state)
        assert k + len(resumed.history["loss"]) == stopped_after
        assert resumed.restored_epoch == best.best_epoch == straight.restored_epoch
        assert resumed.history == {name: values[k:] for name, values in straight.history.items()}
        _assert_same_early_stopping(resumed.callback_states[2], best)
        # Every checkpoint the resumed run wrote describes the same arrays, bit for bit.
        for epoch in range(k + 1, stopped_after + 1):
            name = f"epoch{epoch}.npz"
            assert _described(tmp_path / "resumed" / name) == _described(tmp_path / "straight" / name)

    # Without its states early stopping starts afresh at epoch k and stops elsewhere.
    forgetful = _fit(saved.train_state, epochs - k, callbacks=resumed_cbs)
    assert k + len(forgetful.history["loss"]) != stopped_after
    assert forgetful.train_state.epoch != straight.train_state.epoch


@pytest.mark.parametrize("restore_best", [True, False])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_state_round_trips_through_a_checkpoint(
    tmp_path: Path, restore_best: bool, mode: Literal["min", "max"]
) -> None:
    net, opt = _net(), _opt()
    start = _start(net, opt)
    stopping = train.early_stopping("loss", patience=5, mode=mode, restore_best=restore_best)
    template = stopping.init(start)
    assert isinstance(template, train.EarlyStoppingState)
    assert template.best_train_state is (start if restore_best else None)
    after = _fit(start, 2, callbacks=[stopping]).callback_states[0]
    for i, state in enumerate([template, after]):
        path = tmp_path / f"s{i}.npz"
        checkpoint.save(path, state)
        loaded = checkpoint.load(path, template=template)
        assert isinstance(state, train.EarlyStoppingState)
        assert type(loaded) is train.EarlyStoppingState
        assert (loaded.best, loaded.best_epoch, loaded.wait) == (state.best, state.best_epoch, state.wait)
        assert type(loaded.best) is float and type(loaded.best_epoch) is int
        if restore_best:
            assert isinstance(loaded.best_train_state, train.TrainState)
            assert isinstance(state.best_train_state, train.TrainState)
            _assert_same_train_state(loaded.best_train_state, state.best_train_state)
        else:
            assert loaded.best_train_state is None
    assert isinstance(after, train.EarlyStoppingState)
    assert after.best_epoch >= 0
    assert math.isinf(template.best) and not math.isinf(after.best)


def _nan_logs(state: object, end: train.EpochEnd, /) -> train.CallbackResult:
    return train.CallbackResult(None, {"nan": math.nan})


def test_early_stopping_without_an_improvement_restores_nothing() -> None:
    net, opt = _net(), _opt()
    nan = train.Callback(lambda _ts: None, _nan_logs)
    result = _fit(_start(net, opt), 5, callbacks=[nan, train.early_stopping("nan", patience=2)])
    # NaN never improves on inf: it stops after `patience` epochs and keeps the last state.
    assert len(result.history["loss"]) == 2
    _assert_same_train_state(result.train_state, _fit(_start(net, opt), 2).train_state)
    stopped = result.callback_states[1]
    assert isinstance(stopped, train.EarlyStoppingState)
    assert (stopped.best_epoch, stopped.wait) == (-1, 2)


def test_fit_wants_one_callback_state_per_callback() -> None:
    net, opt = _net(), _opt()
    with pytest.raises(ValueError, match="fit: got 0 callback_states for 1 callbacks"):
        _fit(_start(net, opt), 1, callbacks=[train.early_stopping("loss")], callback_states=())


def test_a_train_step_returns_frozen_state() -> None:
    net, opt = _net(), _opt()
    step = train.train_step(net, losses.sigmoid_binary_cross_entropy, opt)
    ts, _ = step(_start(net, opt), _data(), fdl.random.key(0))
    assert isinstance(ts.buffers, fdl.params.FrozenParams) and ts.buffers
    assert all(not a.flags.writeable for a in ts.buffers.values())
    with pytest.raises(TypeError):
        ts.buffers["1.running_mean"] = np.zeros(8, np.float32)


def _halved_grads(
    params: fdl.Params, x: fdl.Array, y: Any, ctx: fdl.Context = fdl.EVAL, /
) -> train.ValueAndGrad:
    out = train.value_and_grad(_net(), losses.sigmoid_binary_cross_entropy)(params, x, y, ctx)
    return out._replace(grads={k: g * g.dtype.type(0.5) for k, g in out.grads.items()})


def test_fit_computes_grads_with_the_grad_fn_it_is_given() -> None:
    net, opt = _net(), _opt()
    default = _fit(_start(net, opt), 2)
    same = _fit(_start(net, opt), 2, grad_fn=train.value_and_grad(net, losses.sigmoid_binary_cross_entropy))
    _assert_same_train_state(same.train_state, default.train_state)
    assert same.history == default.history
    # SGD takes the grads at face value, so halved grads with twice the rate give the same steps.
    sgd, sgd2 = optim.sgd(0.1), optim.sgd(0.2)
    _, params, buffers = net.init_with_buffers(fdl.random.key(1), (None, 4))
    kw: dict[str, Any] = {"key": fdl.random.key(3), "epochs": 1, "batch_size": 16, "progress": "none"}
    loss = losses.sigmoid_binary_cross_entropy
    plain = train.fit(net, loss, sgd, train.init_train_state(sgd, params, buffers), _data(), **kw)
    halved = train.fit(
        net, loss, sgd2, train.init_train_state(sgd2, params, buffers), _data(), **kw, grad_fn=_halved_grads
    )
    assert fdl.params.allclose(halved.train_state.params, plain.train_state.params, rtol=1e-6, atol=1e-7)
