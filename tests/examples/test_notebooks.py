"""The learning path runs as notebooks: each example converts with jupytext and executes with nbclient.

The notebooks run at smoke size (``FUNCTIONAL_DL_SMOKE=1``, which the examples read) in a temporary
directory, with this checkout first on the kernel's path; figures are saved there and shown inline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
#: The learning path, in order.
PATH = [
    "linear_regression",
    "breast_cancer",
    "regularisation",
    "optimizers_compared",
    "vanishing_gradients",
    "digits_cnn",
    "sequence_models",
    "char_lm",
]


#: The examples that draw figures (each must save at least one and show each inline).
PLOTTING = {
    "breast_cancer",
    "regularisation",
    "optimizers_compared",
    "vanishing_gradients",
    "sequence_models",
    "char_lm",
}


def _outputs(cells: list[Any], kind: str) -> list[Any]:
    return [
        out for cell in cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == kind
    ]


@pytest.mark.parametrize("name", PATH)
def test_example_runs_as_a_notebook(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = jupytext.read(ROOT / "examples" / f"{name}.py", fmt="py:percent")
    markdown = [cell for cell in nb.cells if cell.cell_type == "markdown"]
    assert markdown, f"{name}.py has no markdown cells"
    monkeypatch.setenv("FUNCTIONAL_DL_SMOKE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "examples")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    printed = "".join(str(out["text"]) for out in _outputs(nb.cells, "stream"))
    assert printed, f"{name} printed nothing"
    saved = sorted(path.name for path in tmp_path.glob("outputs/*.png"))
    inline = [out for out in _outputs(nb.cells, "display_data") if "image/png" in out["data"]]
    assert len(inline) == len(saved), (saved, len(inline))  # every saved figure is also shown inline
    assert bool(saved) == (name in PLOTTING), saved


def test_the_path_covers_every_teaching_step() -> None:
    for name in PATH:
        assert (ROOT / "examples" / f"{name}.py").exists(), name
