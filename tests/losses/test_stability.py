"""Every loss is finite, warning-free and exact in the limit at inputs of +-1e4 (float32 and float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from functional_dl import losses

BIG = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]])

CASES: dict[str, tuple[Callable[..., tuple[np.ndarray, np.ndarray]], np.ndarray]] = {
    "ce_labels": (losses.softmax_cross_entropy, np.array([1, 0, 2])),
    "ce_smoothed": (
        lambda z, t, **kw: losses.softmax_cross_entropy(z, t, label_smoothing=0.1, **kw),
        np.array([1, 0, 2]),
    ),
    "ce_soft": (losses.softmax_cross_entropy, np.full((3, 3), 1 / 3)),
    "sigmoid_bce": (losses.sigmoid_binary_cross_entropy, np.array([[0, 1, 1], [1, 0, 0], [0.5, 0, 1]])),
    "mse": (losses.mean_squared_error, -BIG),
    "mae": (losses.mean_absolute_error, -BIG),
    "huber": (losses.huber, -BIG),
    "kl": (losses.kl_divergence, np.full((3, 3), 1 / 3)),
    "kl_log_target": (
        lambda z, t, **kw: losses.kl_divergence(z, t, log_target=True, **kw),
        np.full((3, 3), -1e4),
    ),
    "hinge": (losses.hinge, np.array([[1, -1, 1], [1, 1, -1], [-1, -1, 1]])),
    "multiclass_hinge": (losses.multiclass_hinge, np.array([1, 0, 2])),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_finite_at_plus_minus_1e4(name: str, dtype: Any) -> None:
    loss, target = CASES[name]
    for reduction in ("mean", "sum", "none"):
        value, grad = loss(BIG.astype(dtype), target, reduction=reduction)  # warnings are errors here
        assert np.isfinite(value).all() and np.isfinite(grad).all(), reduction
        assert value.dtype == dtype and grad.dtype == dtype


def test_cross_entropy_exact_in_the_limit() -> None:
    value, grad = losses.softmax_cross_entropy(BIG, np.array([1, 0, 2]), reduction="none")
    # Rows 0 and 1: the label's logit is 2e4 below the max, so the loss is 2e4 (plus log 1).
    assert value.tolist() == [2e4, 2e4, np.log(3)]
    np.testing.assert_allclose(grad[0], [1.0, -1.0, 0.0], atol=0)


def test_binary_cross_entropy_on_probabilities_clamps_at_0_and_1() -> None:
    value, grad = losses.binary_cross_entropy(
        np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), reduction="none"
    )
    assert value.tolist() == [[100.0, 100.0]]  # PyTorch's log clamp at -100
    assert np.isfinite(grad).all()
