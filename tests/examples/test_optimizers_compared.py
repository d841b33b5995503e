"""The optimizer comparison runs, shares everything but the optimizer, and the adaptive ones lead early."""

from __future__ import annotations

import sys
from pathlib import Path

import optimizers_compared as example
import pytest
from _plots import have_matplotlib


def test_short_comparison() -> None:
    result = example.run(epochs=5)
    assert set(result.train_loss) == {"SGD", "momentum 0.9", "Adam", "AdamW (wd 0.01)"}
    for name, curve in result.train_loss.items():
        assert len(curve) == 5
        assert curve[-1] < curve[0], name
        assert 0.5 <= result.test_accuracy[name] <= 1.0
    # Same start and same batches: the first epoch's training loss differs only through the updates.
    assert result.train_loss["Adam"][-1] < result.train_loss["SGD"][-1]


def test_script_smoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["optimizers_compared.py", "--smoke", "--out", str(tmp_path)])
    example.main()
    out = capsys.readouterr().out
    assert "AdamW" in out and "test accuracy" in out
    if have_matplotlib():
        assert (tmp_path / "optimizers_compared.png").exists()
