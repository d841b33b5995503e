from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

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
    _, params, state = net.init_with_state(fdl.random.key(1), (None, 4))
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
    assert_bitwise_equal(a.state, b.state, "state")
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
    _assert_same_train_state(first.state, second.state)
    assert first.history == second.history
    assert len(first.history["loss"]) == 3
    assert first.history["loss"][-1] < first.history["loss"][0]
    other = _fit(_start(net, opt), 3, key=4)
    assert not fdl.params.allclose(other.state.params, first.state.params, rtol=0.0)


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path: Path) -> None:
    net, opt = _net(), _opt()
    straight = _fit(_start(net, opt), 4)
    half = _fit(_start(net, opt), 2)
    path = tmp_path / "train_state.npz"
    checkpoint.save(path, half.state)
    restored = checkpoint.load(path, template=_start(net, opt))
    assert isinstance(restored, train.TrainState)
    resumed = _fit(restored, 2)
    assert resumed.state.epoch == 4
    _assert_same_train_state(resumed.state, straight.state)
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
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    first_epoch = _fit(_start(net, opt), 1)
    _assert_same_train_state(result.state, first_epoch.state)
    logs = train.evaluate(
        net,
        losses.sigmoid_binary_cross_entropy,
        first_epoch.state.params,
        val,
        state=first_epoch.state.state,
        metrics={"accuracy": metrics.accuracy},
    )
    assert logs["loss"] == result.history["val_loss"][0]
    assert logs["accuracy"] == result.history["val_accuracy"][0]


def test_early_stopping_without_its_monitor_says_so() -> None:
    net, opt = _net(), _opt()
    with pytest.raises(KeyError, match="val_loss"):
        _fit(_start(net, opt), 1, callbacks=[train.early_stopping()])


def test_predict_in_batches_equals_one_pass() -> None:
    net = _net()
    ts = _fit(_start(net, _opt()), 1).state
    x, _ = _data(37)
    whole = train.predict(net, ts.params, x, state=ts.state)
    sliced = train.predict(net, ts.params, x, state=ts.state, batch_size=8)
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
    straight = _fit(_start(net, opt), 3, callbacks=[train.save_checkpoints(pattern)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch1.npz", "epoch2.npz", "epoch3.npz"]
    from_one = checkpoint.load(tmp_path / "epoch1.npz", template=_start(net, opt))
    _assert_same_train_state(_fit(from_one, 2).state, straight.state)
    last = checkpoint.load(tmp_path / "epoch3.npz", template=_start(net, opt))
    _assert_same_train_state(last, straight.state)
