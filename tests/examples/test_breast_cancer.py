"""The main demo reaches its target and its pieces behave."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

import breast_cancer

import functional_dl as fdl


def test_demo_reaches_95_percent(capsys: pytest.CaptureFixture[str]) -> None:
    accuracy = breast_cancer.train()
    out = capsys.readouterr().out
    assert accuracy >= 0.95
    assert "epoch   1/60" in out and "final test accuracy" in out


def test_split_is_standardised_with_train_statistics_only() -> None:
    data = breast_cancer.load_data(fdl.random.key(0))
    assert data.x_train.dtype == np.float32 and data.y_train.shape == (len(data.x_train), 1)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-4)
    assert abs(float(data.x_test.mean())) > 1e-4  # test data is scaled with train statistics, not its own
    assert len(data.x_test) == 114 and len(data.x_train) == 455


def test_network_gradients_are_exact() -> None:
    net = breast_cancer.build_network()
    _, params = net.init(fdl.random.key(0), (None, 30))
    x = fdl.random.normal(fdl.random.key(1), (3, 30), np.float64)
    assert fdl.testing.check_gradients(net, params, x).passed
