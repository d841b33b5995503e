"""The README is true: its Python blocks run in order, as written, and its Layer table is the Layer."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from functional_dl.types import Layer

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return FENCE.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_its_python_blocks() -> None:
    assert len(python_blocks()) >= 5


def test_every_python_block_runs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One namespace, in order, as a reader would paste them; files the blocks write land in tmp_path.
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    out = io.StringIO()
    for i, block in enumerate(python_blocks()):
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as error:  # the block's number makes a failure easy to find
            raise AssertionError(f"README python block {i + 1} failed:\n{block}") from error
    printed = out.getvalue()
    assert "worst" in printed  # check_gradients' report was printed
    assert os.listdir(tmp_path)  # the saving examples really wrote files


def _table_rows(header: str) -> list[str]:
    """The first backquoted name of each row of the table whose header row starts with ``header``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:  # skip the header and the |---| row
        if not line.startswith("|"):
            break
        rows.append(re.findall(r"`(\w+)`", line.split("|")[1])[0])
    return rows


def test_the_layer_table_lists_exactly_the_fields_and_methods() -> None:
    assert _table_rows("| field |") == list(Layer._fields)
    assert _table_rows("| method |") == ["init", "param_grads"]
