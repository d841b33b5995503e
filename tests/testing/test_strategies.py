"""The shipped hypothesis strategies produce what they promise."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from functional_dl.testing import strategies as fst


@given(fst.layer_inputs(feature_shape=(3,), dtype=np.float32, min_magnitude=0.1, bound=2.0))
def test_layer_inputs(inp: fst.LayerInput) -> None:
    assert inp.x.dtype == np.float32
    assert inp.x.shape[1:] == (3,) and 1 <= inp.x.shape[0] <= 4
    assert inp.in_shape == (None, 3)
    assert np.all(np.abs(inp.x) >= 0.1) and np.all(np.abs(inp.x) <= 2.0)


@given(fst.shapes(min_dims=2, max_dims=3, max_side=4))
def test_shapes(shape: tuple[int, ...]) -> None:
    assert 2 <= len(shape) <= 3 and all(1 <= s <= 4 for s in shape)
