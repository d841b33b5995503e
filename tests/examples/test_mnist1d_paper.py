"""The MNIST-1D reproduction: smoke mode runs end to end, and its pieces behave."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mnist1d")

import mnist1d_models
import mnist1d_paper

import functional_dl as fdl


def test_smoke_mode_runs_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    results = mnist1d_paper.main(["--smoke"])
    out = capsys.readouterr().out
    assert "MNIST-1D test accuracy" in out and "paper README / notebook" in out
    for runs in results.values():
        assert set(runs) == set(mnist1d_models.MODELS)
        for model, (run,) in runs.items():
            assert 15.0 < run.test_accuracy <= 100.0, model  # ten classes: chance is 10%


def test_batches_of_an_epoch_are_a_permutation() -> None:
    rows = np.concatenate([mnist1d_models.batch_indices(3, step, 4000) for step in range(40, 80)])
    assert sorted(rows.tolist()) == list(range(4000))
    assert not np.array_equal(
        mnist1d_models.batch_indices(3, 0, 4000), mnist1d_models.batch_indices(3, 40, 4000)
    )
    assert np.array_equal(mnist1d_models.batch_indices(3, 7, 4000), mnist1d_models.batch_indices(3, 7, 4000))


@pytest.mark.parametrize(
    ("model", "n_params"), [("logistic", 410), ("mlp", 15210), ("cnn", 5210), ("gru", 2 * 162 + 4810)]
)
def test_models_have_the_papers_shapes(model: str, n_params: int) -> None:
    net, in_shape = mnist1d_models.build(model)
    out_shape, params = net.init(fdl.random.key(0), in_shape)
    assert out_shape == (None, 10)
    assert fdl.params.num_params(params) == n_params
    x = mnist1d_models.as_input(model, np.zeros((3, 40), np.float32))
    assert (None, *x.shape[1:]) == in_shape
    logits, _ = net.forward(params, x)
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_cnn_gradients_are_exact() -> None:
    net, in_shape = mnist1d_models.build("cnn", channels=3)  # the same architecture, narrow
    _, params = net.init(fdl.random.key(0), in_shape)
    x = fdl.random.normal(fdl.random.key(1), (2, 1, 40), np.float64)
    # Inputs away from relu kinks are not controllable inside the net; a random input is generic.
    assert fdl.testing.check_gradients(net, params, x).passed


@pytest.mark.torch
def test_torch_models_have_the_same_parameter_counts() -> None:
    pytest.importorskip("torch")
    for model in mnist1d_models.MODELS:
        net, in_shape = mnist1d_models.build(model)
        _, params = net.init(fdl.random.key(0), in_shape)
        torch_net = mnist1d_models._torch_model(model)
        assert sum(p.numel() for p in torch_net.parameters()) == fdl.params.num_params(params)


def test_gru_gradients_are_exact() -> None:
    net, in_shape = mnist1d_models.build("gru")
    _, params = net.init(fdl.random.key(0), in_shape)
    x = fdl.random.normal(fdl.random.key(1), (2, 40, 1), np.float64)
    assert fdl.testing.check_gradients(net, params, x).passed


@pytest.mark.torch
def test_gru_model_has_the_torch_keys_and_outputs() -> None:
    torch = pytest.importorskip("torch")
    net, in_shape = mnist1d_models.build("gru")
    _, params = net.init(fdl.random.key(0), in_shape)
    torch_net = mnist1d_models._torch_model("gru").double()
    linear = {"linear.weight": "2.w", "linear.bias": "2.b"}
    with torch.no_grad():
        for name, p in torch_net.named_parameters():  # rnn.weight_ih_l0 is our 0.weight_ih_l0
            ours = "0." + name.removeprefix("rnn.") if name.startswith("rnn.") else linear[name]
            p.copy_(torch.from_numpy(np.asarray(params[ours], np.float64)))
    x = fdl.random.normal(fdl.random.key(1), (3, 40, 1), np.float64)
    logits, _ = net.forward(fdl.params.cast(params, np.float64), x)
    expected = torch_net(torch.from_numpy(x)).detach().numpy()
    assert np.max(np.abs(logits - expected)) <= 1e-10 * np.max(np.abs(expected))
