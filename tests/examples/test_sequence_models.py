"""The sequence-models notebook: its hand-written GRU is L.gru, and a GRU learns the memory task."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sequence_models as example
from _plots import have_matplotlib

import functional_dl as fdl
from functional_dl import errors


def test_the_hand_written_gru_and_its_backward_are_the_layer() -> None:
    assert example.compare_with_the_layer(seed=0) < 1e-12
    assert example.compare_with_the_layer(seed=1) < 1e-12


def test_the_gradient_check_in_the_notebook_passes() -> None:
    assert example.check_tiny_gru() <= 1.0  # an error ratio: 1 is the tolerance


def test_last_step_layer() -> None:
    net = fdl.serial(
        fdl.layers.gru(3, dtype=np.float64), example.last_step(), fdl.layers.dense(2, dtype=np.float64)
    )
    out_shape, params = net.init(fdl.random.key(0), (None, 5, 2))
    assert out_shape == (None, 2)
    x = fdl.random.normal(fdl.random.key(1), (4, 5, 2), np.float64)
    assert fdl.testing.check_gradients(net, params, x).passed
    fdl.testing.check_purity(net, params, x)
    layer = example.last_step()
    seq = fdl.random.normal(fdl.random.key(2), (2, 3, 4), np.float64)
    y, cache = layer.forward({}, seq)
    np.testing.assert_array_equal(y, seq[:, -1])
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    assert dx.shape == seq.shape and not dx[:, :-1].any() and (dx[:, -1] == 1).all()
    with pytest.raises(errors.ShapeError, match="last_step"):
        layer.forward({}, seq[:, 0])
    with pytest.raises(errors.ShapeError, match="last_step"):
        layer.init(fdl.random.key(0), (None, 4))


def test_labels_are_the_sign_of_the_first_step() -> None:
    x, y = example.make_data(fdl.random.key(0), 64, 7)
    assert x.shape == (64, 7, 1) and y.shape == (64, 1)
    np.testing.assert_array_equal(y[:, 0], x[:, 0, 0] > 0)


def test_the_update_gate_bias_lets_the_gradient_reach_the_first_step() -> None:
    x, y = example.make_data(fdl.random.key(0), 256, 20)
    ratio = {}
    for name, variant in example.VARIANTS.items():
        net = example.build_network(variant, 16)
        _, params = net.init(fdl.random.key(1), (None, 20, 1))
        params = example.with_update_gate_bias(params, variant.update_gate_bias, 16)
        grads = example.input_gradient_norms(net, params, x, y)
        assert len(grads) == 20
        ratio[name] = grads[0] / grads[-1]
    biased = ratio["GRU, update gate bias +2"]
    assert biased > 100 * ratio["GRU"] and biased > 100 * ratio["tanh RNN"]


def test_with_update_gate_bias_moves_only_the_update_gate() -> None:
    net = example.build_network(example.VARIANTS["GRU"], 3)
    _, params = net.init(fdl.random.key(0), (None, 4, 1))
    moved = example.with_update_gate_bias(params, 2.0, 3)
    diff = moved["0.bias_hh_l0"] - params["0.bias_hh_l0"]
    np.testing.assert_allclose(diff, [0, 0, 0, 2, 2, 2, 0, 0, 0], atol=1e-6)
    assert all(np.array_equal(moved[k], params[k]) for k in params if k != "0.bias_hh_l0")
    assert example.with_update_gate_bias(params, 0.0, 3) is params


def test_the_biased_gru_learns_to_remember_the_first_input() -> None:
    result = example.run(example.VARIANTS["GRU, update gate bias +2"], n=1024, steps=20, epochs=8)
    assert len(result.losses) == 8 and result.losses[-1] < 0.5 * result.losses[0]
    assert result.test_accuracy > 0.9  # chance is 0.5; the label is a function of x_0 alone


def test_script_smoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["sequence_models.py", "--smoke", "--out", str(tmp_path)])
    example.main()
    out = capsys.readouterr().out
    assert "largest difference" in out and "gradient check passed" in out
    assert all(f"{name}: at initialisation" in out for name in example.VARIANTS)
    if have_matplotlib():
        assert (tmp_path / "sequence_models_loss.png").exists()
        assert (tmp_path / "sequence_models_input_gradients.png").exists()
