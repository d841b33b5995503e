"""The README's editable install is one that mypy follows: a research script outside the repository
type-checks under ``mypy --strict --disallow-any-expr`` with no ``Any`` from our API.

setuptools' default editable install for a flat layout is an import hook, which Python runs and mypy
cannot see; ``pyproject.toml`` sets the package directory so the install is a plain path entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

RESEARCH_SCRIPT = '''\
"""A small experiment, written the way a user would, outside the repository."""

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, train

key_data, key_init, key_fit = fdl.random.split(fdl.random.key(0), 3)
x = fdl.random.normal(key_data, (64, 4))
y = (x[:, :1] > 0).astype(np.float32)
net = fdl.serial(L.dense(8), L.relu(), L.dense(1))
out_shape, params = net.init(key_init, (None, 4))
opt = optim.adam(0.01)
result = train.fit(
    net, losses.sigmoid_binary_cross_entropy, opt, train.init_train_state(opt, params), (x, y),
    key=key_fit, epochs=2, batch_size=16, metrics={"accuracy": metrics.accuracy}, progress="none",
)
final: float = result.history["accuracy"][-1]
weights: fdl.Array = result.train_state.params["0.w"]
print(out_shape, final, weights.shape)
'''


def test_a_research_script_outside_the_repository_type_checks(tmp_path: Path) -> None:
    script = tmp_path / "experiment.py"
    script.write_text(RESEARCH_SCRIPT)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # so no configuration from elsewhere applies
    # Nothing from the repository may leak in: no path variables, and the script's own directory.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MYPYPATH"}}
    command = [
        sys.executable, "-m", "mypy", "--strict", "--disallow-any-expr", "--no-incremental",
        "--cache-dir", os.devnull, "--python-executable", sys.executable, script.name,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found in 1 source file" in done.stdout


def test_the_script_really_runs(tmp_path: Path) -> None:
    script = tmp_path / "experiment.py"
    script.write_text(RESEARCH_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("(None, 1)")
