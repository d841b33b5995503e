"""Contract tests over every loss in the registry (``cases.py``), on hypothesis-drawn inputs.

* finite differences in float64 of ``sum(value)`` for every reduction, with and without weights;
* ``"none"``, ``"sum"`` and ``"mean"`` agree with each other, and weights multiply per element;
* dtypes: float32 in gives float32 out (value and gradient);
* purity: inputs unchanged, repeated calls bit-identical.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl.testing import check_loss_gradients
from tests.losses.cases import LOSS_CASES, LossCase

ids = [c.id for c in LOSS_CASES]
REDUCTIONS = ["mean", "sum", "none"]


def _weights(case: LossCase, pred: np.ndarray, data: st.DataObject) -> np.ndarray:
    shape = (pred.shape[0], *pred.shape[2:]) if case.per_sample else pred.shape
    return data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 2.0, width=32)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", LOSS_CASES, ids=ids)
@given(data=st.data())
def test_finite_differences(case: LossCase, reduction: str, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    weights = _weights(case, pred, data) if data.draw(st.booleans()) else None
    report = check_loss_gradients(partial(case.fn, reduction=reduction, weights=weights), pred, target)
    assert report.passed, report.describe()


@pytest.mark.parametrize("case", LOSS_CASES, ids=ids)
@given(data=st.data())
def test_reductions_and_weights_agree(case: LossCase, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    none, g_none = case.fn(pred, target, reduction="none")
    total, g_sum = case.fn(pred, target, reduction="sum")
    mean, g_mean = case.fn(pred, target, reduction="mean")
    assert none.shape == ((pred.shape[0], *pred.shape[2:]) if case.per_sample else pred.shape)
    assert total.shape == () and mean.shape == ()
    np.testing.assert_allclose(total, none.sum(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(mean, none.mean(), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(g_none, g_sum)
    np.testing.assert_allclose(g_mean, g_sum / none.size, rtol=1e-15)
    w = _weights(case, pred, data)
    weighted, g_weighted = case.fn(pred, target, reduction="none", weights=w)
    np.testing.assert_allclose(weighted, none * w, rtol=1e-15)
    w_grad = np.expand_dims(w, 1) if case.per_sample else w
    np.testing.assert_allclose(g_weighted, g_none * w_grad, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LOSS_CASES, ids=ids)
@given(data=st.data())
def test_dtype_preserved(case: LossCase, dtype: Any, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    target = target.astype(dtype) if target.dtype.kind == "f" else target
    for reduction in REDUCTIONS:
        value, grad = case.fn(pred.astype(dtype), target, reduction=reduction)
        assert value.dtype == dtype, reduction
        assert grad.dtype == dtype, reduction
        assert grad.shape == pred.shape


@pytest.mark.parametrize("case", LOSS_CASES, ids=ids)
@given(data=st.data())
def test_purity(case: LossCase, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    pred = pred.astype(np.float32)
    w = _weights(case, pred, data)
    before = (pred.copy(), target.copy(), w.copy())
    first = case.fn(pred, target, weights=w)
    second = case.fn(pred, target, weights=w)
    for a, b in zip(before, (pred, target, w), strict=True):
        assert a.tobytes() == b.tobytes()
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tobytes() == second[1].tobytes()
