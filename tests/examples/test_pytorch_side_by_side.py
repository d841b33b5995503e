"""functional_dl and PyTorch agree step by step on the same network, weights and batches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

import pytorch_side_by_side as example
from _plots import have_matplotlib


@pytest.mark.torch
def test_losses_agree_for_100_steps_in_float64() -> None:
    result = example.run(steps=100)
    assert len(result.ours) == len(result.theirs) == 100
    assert result.max_loss_difference < 1e-6
    assert result.max_param_difference < 1e-6
    assert result.ours[-1] < result.ours[0]  # and it is actually training


@pytest.mark.torch
def test_smoke_run_prints_both_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["pytorch_side_by_side.py", "--smoke", "--out", str(tmp_path)])
    example.main()
    out = capsys.readouterr().out
    assert "functional_dl" in out and "PyTorch" in out
    assert "largest loss difference over 10 steps" in out
    if have_matplotlib():
        assert (tmp_path / "pytorch_side_by_side.png").exists()
