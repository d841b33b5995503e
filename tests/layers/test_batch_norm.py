"""Batch norm: running statistics over several steps against PyTorch, modes, and bad input.

Forward and backward in both modes are compared with ``torch.nn.functional.batch_norm`` for every
batch norm case in the registry (``test_torch.py``); here the module API is followed for several
training steps, then evaluated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import ParamsError, ShapeError


def _steps(layer: fdl.Layer[Any], shape: tuple[int, ...], n_steps: int, dtype: Any) -> list[np.ndarray]:
    return [
        fdl.random.normal(k, shape, dtype) * 2.0 + 0.5 * (i + 1)
        for i, k in enumerate(fdl.random.split(fdl.random.key(7), n_steps))
    ]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("make", "torch_cls", "shape", "momentum"),
    [
        (L.batch_norm1d, "BatchNorm1d", (8, 3), 0.1),
        (L.batch_norm1d, "BatchNorm1d", (4, 3, 5), 0.3),
        (L.batch_norm2d, "BatchNorm2d", (4, 3, 5, 2), 0.1),
        (L.batch_norm2d, "BatchNorm2d", (2, 2, 3, 3), 0.9),
    ],
)
def test_running_statistics_match_torch_over_several_steps(
    make: Any, torch_cls: str, shape: tuple[int, ...], momentum: float
) -> None:
    torch = pytest.importorskip("torch")
    layer = make(momentum=momentum, dtype=np.float64)
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, *shape[1:]))
    params = fdl.params.freeze(
        {"scale": np.linspace(0.5, 1.5, shape[1]), "bias": np.linspace(-1, 1, shape[1])}
    )
    module = getattr(torch.nn, torch_cls)(shape[1], momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(params["scale"]))
        module.bias.copy_(torch.tensor(params["bias"]))
    module.train()
    for x in _steps(layer, shape, 5, np.float64):
        y, cache = layer.forward(params, x, fdl.Context(train=True, buffers=state))
        state = layer.buffers_of(cache)
        y_t = module(torch.tensor(x))
        np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state["running_mean"], module.running_mean.numpy(), rtol=1e-10)
    np.testing.assert_allclose(state["running_var"], module.running_var.numpy(), rtol=1e-10)
    module.eval()
    x = _steps(layer, shape, 6, np.float64)[-1]
    y, _ = layer.forward(params, x, fdl.Context(train=False, buffers=state))
    np.testing.assert_allclose(y, module(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_running_var_is_unbiased_and_batch_var_is_biased() -> None:
    layer = L.batch_norm1d(momentum=1.0, dtype=np.float64)
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, 1))
    x = np.array([[1.0], [2.0], [4.0]])
    y, cache = layer.forward(params, x, fdl.Context(train=True, buffers=state))
    new = layer.buffers_of(cache)
    assert new["running_mean"][0] == pytest.approx(7 / 3)
    assert new["running_var"][0] == pytest.approx(np.var(x, ddof=1))
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 7 / 3) / np.sqrt(np.var(x) + 1e-5))


def test_eval_mode_returns_the_state_unchanged_and_ignores_the_batch() -> None:
    layer = L.batch_norm1d()
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, 2))
    x = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    y, cache = layer.forward(params, x, fdl.Context(buffers=state))
    assert layer.buffers_of(cache) is state
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-6)
    y1, _ = layer.forward(params, x[:1], fdl.Context(buffers=state))
    assert np.array_equal(y1, y[:1])  # per-sample in evaluation: no dependence on the batch


def test_state_is_float32_after_training_in_float32() -> None:
    layer = L.batch_norm2d()
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, 3, 4, 4))
    for x in _steps(layer, (2, 3, 4, 4), 3, np.float32):
        y, cache = layer.forward(params, x, fdl.Context(train=True, buffers=state))
        state = layer.buffers_of(cache)
        assert y.dtype == np.float32
    assert {v.dtype for v in state.values()} == {np.dtype(np.float32)}
    assert all(not v.flags.writeable for v in state.values())


def test_state_flows_through_serial_under_prefixed_keys() -> None:
    net = fdl.serial(L.dense(3), L.batch_norm1d(), L.relu(), L.dense(2), L.batch_norm1d())
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 4))
    assert sorted(state) == ["1.running_mean", "1.running_var", "4.running_mean", "4.running_var"]
    assert "1.scale" in params and "4.bias" in params
    x = fdl.random.normal(fdl.random.key(1), (5, 4), np.float32)
    _, cache = net.forward(params, x, fdl.Context(train=True, buffers=state))
    new = net.buffers_of(cache)
    assert new.keys() == state.keys()
    assert not np.array_equal(new["1.running_mean"], state["1.running_mean"])


def test_missing_buffers_is_a_clear_error() -> None:
    layer = L.batch_norm1d()
    _, params = layer.init(fdl.random.key(0), (None, 2))
    with pytest.raises(ParamsError, match=r"^batch_norm1d: expected buffer keys .*init_with_buffers"):
        layer.forward(params, np.ones((3, 2), np.float32), fdl.Context(train=True))


def test_wrong_channels_and_rank_and_single_value_per_channel() -> None:
    layer = L.batch_norm2d()
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, 3, 4, 4))
    ctx = fdl.Context(train=True, buffers=state)
    with pytest.raises(
        ShapeError, match=r"batch_norm2d: expected input with 3 channels .* got \(2, 5, 4, 4\)"
    ):
        layer.forward(params, np.ones((2, 5, 4, 4), np.float32), ctx)
    with pytest.raises(
        ShapeError, match=r"batch_norm2d: expected input of shape \(N, C, H, W\), got \(2, 3\)"
    ):
        layer.forward(params, np.ones((2, 3), np.float32), ctx)
    with pytest.raises(ShapeError, match="more than one value per channel"):
        layer.forward(params, np.ones((1, 3, 1, 1), np.float32), ctx)
    with pytest.raises(ShapeError, match=r"batch_norm1d: expected input of shape \(N, C\) or \(N, C, L\)"):
        L.batch_norm1d().init_with_buffers(fdl.random.key(0), (None, 3, 4, 4))


def test_nested_shape_error_names_the_path() -> None:
    net = fdl.serial(L.dense(3), fdl.serial(L.relu(), L.batch_norm1d()))
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 2))
    bad_state = {**state, "1.1.running_mean": np.zeros(4, np.float32)}
    with pytest.raises(ShapeError, match=r"^1\.1\.batch_norm1d: expected input with 4 channels"):
        net.forward(params, np.ones((2, 2), np.float32), fdl.Context(train=True, buffers=bad_state))


@pytest.mark.parametrize(("momentum", "eps"), [(1.5, 1e-5), (-0.1, 1e-5), (0.1, 0.0)])
def test_bad_hyperparameters(momentum: float, eps: float) -> None:
    with pytest.raises(ValueError, match="batch_norm1d"):
        L.batch_norm1d(momentum=momentum, eps=eps)


def test_stable_at_large_inputs() -> None:
    layer = L.batch_norm1d()
    _, params, state = layer.init_with_buffers(fdl.random.key(0), (None, 2))
    x = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4]], np.float32)
    for train in (True, False):
        y, cache = layer.forward(params, x, fdl.Context(train=train, buffers=state))
        dx, grads = layer.backward(params, cache, np.ones_like(y))
        assert np.isfinite(y).all() and np.isfinite(dx).all()
        assert all(np.isfinite(g).all() for g in grads.values())
