"""Dense's fast bias gradient against the plain formula it replaces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functional_dl.layers.dense import _bias_grad, _bias_grad_fast
from functional_dl.testing import strategies as fst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_fast_bias_grad_agrees_with_the_formula(dtype: Any, data: st.DataObject) -> None:
    shape = data.draw(fst.shapes(min_dims=2, max_dims=4, max_side=40))
    dy = data.draw(fst.arrays(shape, dtype=dtype, bound=1e3))
    plain, fast = _bias_grad(dy), _bias_grad_fast(dy)
    assert fast.dtype == plain.dtype == dy.dtype
    assert fast.shape == plain.shape == (shape[-1],)
    # Both are sums of the same n numbers in different orders: each is within (n - 1) u sum|dy| of
    # the exact sum (u = eps / 2, the unit roundoff), so they differ by at most n eps sum|dy|.
    rows = dy.reshape(-1, shape[-1])
    bound = rows.shape[0] * np.finfo(dtype).eps * np.abs(rows).sum(axis=0, dtype=np.float64)
    assert (np.abs(fast.astype(np.float64) - plain.astype(np.float64)) <= bound).all()


def test_fast_bias_grad_is_exact_on_small_integers() -> None:
    dy = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11
    np.testing.assert_array_equal(_bias_grad_fast(dy), _bias_grad(dy))
    np.testing.assert_array_equal(_bias_grad(dy), dy.sum(axis=(0, 1)))
