"""The digits CNN: smoke mode runs, the split is fixed, the network's gradients are exact."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

import digits_cnn

import functional_dl as fdl


def test_smoke_mode(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["digits_cnn.py", "--smoke"])
    digits_cnn.main()
    out = capsys.readouterr().out
    assert "epoch   2/2" in out and "final test accuracy" in out
    accuracy = float(out.split("final test accuracy")[1].split("%")[0])
    assert accuracy > 30.0  # ten classes: chance is 10%, and 16 steps already learn a lot


def test_split_is_fixed_and_disjoint() -> None:
    a, b = digits_cnn.load_digits(), digits_cnn.load_digits()
    assert a.x.shape == (1437, 1, 8, 8) and a.x_test.shape == (360, 1, 8, 8)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y, b.y)
    assert a.x.dtype == np.float32 and a.x.min() >= 0.0 and a.x.max() <= 1.0
    train_rows = {row.tobytes() for row in a.x}
    assert sum(row.tobytes() in train_rows for row in a.x_test) < 10  # a few digits are exact duplicates


def test_network_gradients_are_exact_in_training_mode() -> None:
    net = digits_cnn.build_network(widths=(2, 3, 2))  # the same architecture, narrow: few params to probe
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 1, 8, 8))
    x = fdl.random.uniform(fdl.random.key(1), (4, 1, 8, 8), np.float64)
    ctx = fdl.Context(train=True, key=fdl.random.key(2), buffers=state)
    assert fdl.testing.check_gradients(net, params, x, ctx=ctx).passed
