"""``kl_divergence(..., reduction="batchmean")`` on the registry's KL cases and their draws.

The contract tests run the reductions every loss has; this file runs the one only KL has:
finite differences in float64 (with and without weights), ``sum / N`` exactly, float32 in gives
float32 out, purity, and PyTorch's own ``F.kl_div(..., reduction="batchmean")`` to 1e-10.
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

KL_CASES = [c for c in LOSS_CASES if c.id.startswith("kl")]
ids = [c.id for c in KL_CASES]


def _weights(pred: np.ndarray, data: st.DataObject) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, pred.shape, elements=st.floats(0.0, 2.0, width=32)))


def test_the_registry_has_kl_cases() -> None:
    assert {"kl", "kl_log_target"} <= set(ids)


@pytest.mark.parametrize("case", KL_CASES, ids=ids)
@given(data=st.data())
def test_finite_differences(case: LossCase, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    weights = _weights(pred, data) if data.draw(st.booleans()) else None
    report = check_loss_gradients(partial(case.fn, reduction="batchmean", weights=weights), pred, target)
    assert report.passed, report.describe()


@pytest.mark.parametrize("case", KL_CASES, ids=ids)
@given(data=st.data())
def test_batchmean_is_the_sum_over_the_batch_size(case: LossCase, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    w = _weights(pred, data)
    total, g_sum = case.fn(pred, target, reduction="sum", weights=w)
    value, grad = case.fn(pred, target, reduction="batchmean", weights=w)
    n = pred.shape[0]
    assert value.shape == ()
    np.testing.assert_allclose(value, total / n, rtol=1e-15, atol=0)
    np.testing.assert_allclose(grad, g_sum / n, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", KL_CASES, ids=ids)
@given(data=st.data())
def test_dtype_preserved(case: LossCase, dtype: Any, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    value, grad = case.fn(pred.astype(dtype), target.astype(dtype), reduction="batchmean")
    assert value.dtype == dtype
    assert grad.dtype == dtype
    assert grad.shape == pred.shape


@pytest.mark.parametrize("case", KL_CASES, ids=ids)
@given(data=st.data())
def test_purity(case: LossCase, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    pred = pred.astype(np.float32)
    w = _weights(pred, data)
    before = (pred.copy(), target.copy(), w.copy())
    first = case.fn(pred, target, reduction="batchmean", weights=w)
    second = case.fn(pred, target, reduction="batchmean", weights=w)
    for a, b in zip(before, (pred, target, w), strict=True):
        assert a.tobytes() == b.tobytes()
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tobytes() == second[1].tobytes()


@pytest.mark.torch
@pytest.mark.parametrize("case", KL_CASES, ids=ids)
@given(data=st.data())
def test_matches_torch(case: LossCase, data: st.DataObject) -> None:
    torch = pytest.importorskip("torch")
    pred, target = case.draw(data)
    value, grad = case.fn(pred, target, reduction="batchmean")
    pred_t = torch.tensor(pred, requires_grad=True)
    log_target = case.id == "kl_log_target"
    theirs = torch.nn.functional.kl_div(
        pred_t, torch.tensor(target), reduction="batchmean", log_target=log_target
    )
    theirs.backward()
    scale = max(float(np.abs(case.fn(pred, target, reduction="none")[0]).sum()) / pred.shape[0], 1e-300)
    assert abs(float(value) - float(theirs.detach())) <= 1e-10 * scale
    grad_t = pred_t.grad.numpy()
    assert np.max(np.abs(grad - grad_t), initial=0.0) <= 1e-10 * max(
        float(np.abs(grad_t).max(initial=0.0)), 1e-300
    )
