"""Checkpoint limits: nesting depth, memory while loading, compressed members, what the digest means."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from functional_dl import checkpoint
from functional_dl._checkpoint_tree import MAX_DEPTH
from functional_dl.errors import CheckpointError


def _nested(depth: int) -> object:
    tree: object = {"w": np.arange(3.0)}
    for _ in range(depth):
        tree = {"child": tree}
    return tree


def test_the_deepest_tree_that_saves_also_loads(tmp_path: Path) -> None:
    path = tmp_path / "deep.npz"
    tree = _nested(MAX_DEPTH - 1)
    checkpoint.save(path, tree)
    node = checkpoint.load(path)
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(node, dict)
        node = node["child"]
    assert isinstance(node, dict)
    np.testing.assert_array_equal(node["w"], np.arange(3.0))
    assert checkpoint.load(path, template=tree) is not None


@pytest.mark.parametrize("depth", [MAX_DEPTH, 300, 600])
def test_a_tree_nested_too_deep_is_refused_by_save(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.npz"
    with pytest.raises(CheckpointError, match=f"nests deeper than {MAX_DEPTH} levels"):
        checkpoint.save(path, _nested(depth))
    assert not path.exists()


def test_loading_holds_each_array_about_once(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    big = np.arange(50 * 2**20 // 8, dtype=np.float64)  # 50 MB
    checkpoint.save(path, {"w": big})
    tracemalloc.start()
    try:
        out = checkpoint.load(path, template={"w": big})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(out, dict)
    np.testing.assert_array_equal(out["w"], big)
    assert peak <= 1.1 * big.nbytes, f"peak {peak / big.nbytes:.2f}x the array"


def _bomb(path: Path, n: int) -> None:
    # A consistent checkpoint of n zero bytes, rewritten with its members deflated: tiny on disk.
    plain = path.with_suffix(".plain.npz")
    checkpoint.save(plain, {"w": np.zeros(n, np.uint8)})
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))


def test_a_compressed_member_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    _bomb(path, 200 * 2**20)
    assert path.stat().st_size < 2**20
    with pytest.raises(CheckpointError, match="compressed"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="compressed"):
        checkpoint.read_header(path)


def test_the_docs_say_the_digest_detects_corruption_not_tampering() -> None:
    doc = checkpoint.__doc__ or ""
    assert "not *tampering*" in doc
    assert "tampered" not in (checkpoint.load.__doc__ or "")
