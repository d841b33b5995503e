"""Softmax cross-entropy's direct path for ``(N, C)`` logits and ``(N,)`` labels against the formula."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functional_dl.losses.categorical import _hard_labels, _hard_labels_fast
from functional_dl.testing import strategies as fst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bound", [3.0, 1e4])
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_fast_path_agrees_with_the_formula(dtype: Any, bound: float, data: st.DataObject) -> None:
    shape = data.draw(fst.shapes(min_dims=2, max_dims=2, max_side=12))
    logits = data.draw(fst.arrays(shape, dtype=dtype, bound=bound))
    labels = data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0]))
    loss, grad = _hard_labels(logits, np.array(labels))
    fast_loss, fast_grad = _hard_labels_fast(logits, np.array(labels))
    assert fast_loss.dtype == loss.dtype == fast_grad.dtype == grad.dtype == logits.dtype
    # The loss is the same subtraction, log s - z_y against -(z_y - log s): equal bit for bit.
    np.testing.assert_array_equal(fast_loss, loss)
    # The gradient is e^z / s against e^(z - log s): the rounding of z - log s changes p by a
    # relative eps |log p|, an absolute p |log p| eps <= eps / e, plus one rounding of each.
    np.testing.assert_allclose(fast_grad, grad, rtol=0, atol=4 * np.finfo(dtype).eps)
