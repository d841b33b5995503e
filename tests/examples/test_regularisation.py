"""The regularisation example: both remedies narrow the gap between test and training loss."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import regularisation as example
from _plots import have_matplotlib

import functional_dl as fdl


def test_l2_and_dropout_narrow_the_generalisation_gap() -> None:
    results = example.run(epochs=40)
    plain, l2, dropout = results.values()
    gap = {name: c.test_loss[-1] - c.train_loss[-1] for name, c in results.items()}
    names = list(results)
    assert len(plain.train_loss) == len(plain.test_loss) == 40
    assert gap[names[1]] < gap[names[0]]
    assert gap[names[2]] < gap[names[0]]
    assert l2.train_loss[-1] > plain.train_loss[-1]  # the penalty holds the fit back
    assert dropout.train_loss[-1] > plain.train_loss[-1]


def test_l2_variant_penalises_weights_only() -> None:
    _, l2 = list(example.variants().values())[1]
    assert l2 is not None
    params = fdl.params.freeze({"0.w": np.array([[1.0, -2.0]]), "0.b": np.array([3.0])})
    value, grads = l2(params)
    assert float(value) == pytest.approx(0.5 * example.L2_STRENGTH * 5.0)
    np.testing.assert_allclose(grads["0.w"], example.L2_STRENGTH * params["0.w"])
    assert not np.any(grads["0.b"])


def test_script_smoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["regularisation.py", "--smoke", "--out", str(tmp_path)])
    example.main()
    out = capsys.readouterr().out
    assert "dropout" in out and "L2" in out and "test acc" in out
    if have_matplotlib():
        assert (tmp_path / "regularisation.png").exists()
        assert (tmp_path / "regularisation_boundaries.png").exists()


def test_boundaries_are_probabilities_over_the_grid() -> None:
    results = example.run(epochs=2)
    grid = example.plane(*example.make_data()[0]).grid
    for curves in results.values():
        assert curves.boundary is not None and curves.boundary.shape == grid[0].shape
        assert np.all((curves.boundary >= 0) & (curves.boundary <= 1))
        assert curves.boundary.min() < 0.5 < curves.boundary.max()  # the boundary crosses the plane
