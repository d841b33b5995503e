"""The vanishing/exploding-gradients example shows the three regimes it describes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import vanishing_gradients as example
from _plots import have_matplotlib

SIGMOID, RELU_NAIVE, RELU_HE = example.CONFIGS


def test_three_regimes_in_a_smoke_run() -> None:
    result = example.run(depth=6, width=32, epochs=3)
    vanish, explode, stable = (result.grad_norms[n].signal for n in (SIGMOID, RELU_NAIVE, RELU_HE))
    assert len(vanish) == 7
    assert vanish[0] / vanish[-1] < 1e-6  # shrinks towards the input
    assert explode[0] / explode[-1] > 1e3  # grows towards the input
    assert 0.1 < stable[0] / stable[-1] < 10  # stays of the same order
    assert set(result.losses) == {SIGMOID, RELU_HE}
    assert result.losses[RELU_HE][-1] < result.losses[SIGMOID][-1]


def test_script_smoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["vanishing_gradients.py", "--smoke", "--depth", "4", "--width", "16", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    example.main()
    out = capsys.readouterr().out
    assert "layer 1 / last layer" in out
    if have_matplotlib():
        assert (tmp_path / "vanishing_gradients_signal.png").exists()
        assert (tmp_path / "vanishing_gradients_training.png").exists()
