"""The MNIST-1D sweep example: smoke mode runs a real sweep on a local cluster and saves its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mnist1d")
pytest.importorskip("distributed")

import mnist1d_sweep
from _plots import have_matplotlib


def test_smoke_mode_sweeps_and_saves_the_table_plot_and_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = mnist1d_sweep.main(["--smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert len(results) == 2 * 1 * 3  # learning rates x weight decays x seeds
    assert {r.trial.hparams["seed"] for r in results} == {0, 1, 2}
    header = out.splitlines()[1].split()
    assert header == ["trial", "lr", "weight_decay", "seed", "loss", "accuracy", "val_loss", "val_accuracy"]
    for r in results:
        assert len(r.history["val_accuracy"]) == 2
        assert 0.0 <= r.final["val_accuracy"] <= 1.0
        assert r.checkpoint is not None and Path(r.checkpoint).is_file()
    assert "mean +- sd" in out
    if have_matplotlib():
        assert (tmp_path / "mnist1d_sweep.png").stat().st_size > 0
