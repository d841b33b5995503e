"""Clipping by value, by global norm and per parameter (global norm vs PyTorch is in test_torch_parity)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O

G = {"w": np.array([3.0, -4.0]), "b": np.array([0.1, 0.0])}


def test_clip_by_value() -> None:
    t = O.clip(0.5)
    out, _ = t.update(G, t.init(G), G)
    np.testing.assert_array_equal(out["w"], [0.5, -0.5])
    np.testing.assert_array_equal(out["b"], [0.1, 0.0])


@given(max_norm=st.floats(0.01, 100.0))
def test_global_norm_never_exceeds_max(max_norm: float) -> None:
    t = O.clip_by_global_norm(max_norm)
    out, _ = t.update(G, t.init(G), G)
    norm = np.sqrt(sum(float(np.sum(u * u)) for u in out.values()))
    assert norm <= max_norm * (1 + 1e-12)
    if max_norm > 5.01:
        assert out["w"] is G["w"]  # untouched when already inside the ball


def test_block_norm_clips_each_array_alone() -> None:
    t = O.clip_by_block_norm(1.0)
    out, _ = t.update(G, t.init(G), G)
    np.testing.assert_allclose(out["w"], np.array([3.0, -4.0]) / (5.0 + 1e-6))
    np.testing.assert_array_equal(out["b"], G["b"])


def test_float32_stays_float32() -> None:
    g32 = {k: v.astype(np.float32) for k, v in G.items()}
    for t in (O.clip(0.5), O.clip_by_global_norm(1.0), O.clip_by_block_norm(1.0)):
        out, _ = t.update(g32, t.init(g32), g32)
        assert all(u.dtype == np.float32 for u in out.values())


@pytest.mark.parametrize("make", [O.clip, O.clip_by_global_norm, O.clip_by_block_norm])
def test_non_positive_bound_rejected(make: object) -> None:
    with pytest.raises(ValueError, match="positive"):
        make(0.0)  # type: ignore[operator]
