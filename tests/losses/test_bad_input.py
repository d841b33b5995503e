"""Losses refuse bad labels and shapes with clear errors naming the loss."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from functional_dl import losses
from functional_dl.errors import DomainError, DTypeError, LabelError, ShapeError

LOGITS = np.zeros((3, 4))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0.0, np.nan, 1.0]), "labels contain NaN"),
        (np.array([0, 4, 1]), r"label 4 is out of range for 4 classes \(0\.\.3\)"),
        (np.array([0, -1, 1]), r"label -1 is out of range"),
        (np.array([0.0, 1.5, 1.0]), "labels must be whole numbers"),
        (np.array(["a", "b", "c"]), r"expected target as numbers \(bool, int or float\), got strings"),
        (np.array([True, False, True]), "expected integer class labels, got dtype bool"),
    ],
)
def test_cross_entropy_bad_labels(labels: np.ndarray, message: str) -> None:
    with pytest.raises(LabelError, match=rf"^softmax_cross_entropy: {message}"):
        losses.softmax_cross_entropy(LOGITS, labels)


def test_cross_entropy_accepts_whole_float_labels_like_integers() -> None:
    a = losses.softmax_cross_entropy(np.eye(3, 4), np.array([0.0, 1.0, 2.0]))
    b = losses.softmax_cross_entropy(np.eye(3, 4), np.array([0, 1, 2]))
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_cross_entropy_bad_shapes_and_targets() -> None:
    with pytest.raises(
        ShapeError, match=r"expected labels of shape \(3,\) or probabilities of shape \(3, 4\), got \(3, 1\)"
    ):
        losses.softmax_cross_entropy(LOGITS, np.zeros((3, 1), np.int64))
    with pytest.raises(ShapeError, match=r"expected logits \(N, C, \.\.\.\), got \(3,\)"):
        losses.softmax_cross_entropy(np.zeros(3), np.zeros(3, np.int64))
    soft = np.full((3, 4), 0.25)
    soft[1, 2] = np.nan
    with pytest.raises(LabelError, match="target contains NaN"):
        losses.softmax_cross_entropy(LOGITS, soft)
    with pytest.raises(LabelError, match="target values must be >= 0"):
        losses.softmax_cross_entropy(LOGITS, -np.full((3, 4), 0.25))
    with pytest.raises(DTypeError, match="softmax_cross_entropy: expected a floating-point prediction"):
        losses.softmax_cross_entropy(np.zeros((3, 4), np.int64), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        losses.softmax_cross_entropy(LOGITS, np.zeros(3, np.int64), label_smoothing=1.5)


@pytest.mark.parametrize(
    ("loss", "target", "error", "message"),
    [
        (losses.mean_squared_error, np.array([[0.0, np.nan]]), LabelError, "target contains NaN"),
        (losses.mean_absolute_error, np.zeros((2, 2)), ShapeError, r"expected target of shape \(1, 2\)"),
        (losses.huber, np.array([[np.nan, 0.0]]), LabelError, "target contains NaN"),
        (
            losses.sigmoid_binary_cross_entropy,
            np.array([[0.0, 2.0]]),
            LabelError,
            r"values must lie in \[0, 1\]",
        ),
        (losses.kl_divergence, np.array([[0.5, -0.5]]), LabelError, "target values must be >= 0"),
        (losses.kl_divergence, np.array([[0.5, np.nan]]), LabelError, "NaN"),
        (losses.hinge, np.array([[0.0, 1.0]]), LabelError, r"targets must be -1 or \+1"),
    ],
)
def test_elementwise_losses_bad_targets(
    loss: Callable[..., object], target: np.ndarray, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        loss(np.zeros((1, 2)), target)


def test_multiclass_hinge_bad_input() -> None:
    with pytest.raises(LabelError, match=r"^multiclass_hinge: label 7 is out of range"):
        losses.multiclass_hinge(LOGITS, np.array([0, 7, 1]))
    with pytest.raises(ShapeError, match=r"^multiclass_hinge: expected logits \(N, C\) and labels \(N,\)"):
        losses.multiclass_hinge(LOGITS, np.array([0, 1]))


def test_bad_weights_and_reduction() -> None:
    with pytest.raises(ShapeError, match=r"weights of shape \(2,\) do not broadcast"):
        losses.softmax_cross_entropy(LOGITS, np.zeros(3, np.int64), weights=np.ones(2))
    with pytest.raises(ValueError, match="reduction must be"):
        losses.huber(np.zeros(2), np.zeros(2), reduction="batchmean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="huber: delta must be positive"):
        losses.huber(np.zeros(2), np.zeros(2), delta=0.0)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_targets_and_weights_are_refused_like_nan(bad: float) -> None:
    with pytest.raises(LabelError, match=r"^mean_squared_error: target contains infinity"):
        losses.mean_squared_error(np.zeros((1, 2)), np.array([[0.0, bad]]))
    with pytest.raises(DomainError, match=r"^huber: weights contain infinity"):
        losses.huber(np.zeros((1, 2)), np.zeros((1, 2)), weights=np.array([[1.0, bad]]))
    with pytest.raises(DTypeError, match=r"^huber: expected weights as numbers .* got complex numbers"):
        losses.huber(np.zeros((1, 2)), np.zeros((1, 2)), weights=np.array([[1.0, 1j]]))
    with pytest.raises(DTypeError, match=r"^huber: expected weights as numbers .* got strings"):
        losses.huber(np.zeros((1, 2)), np.zeros((1, 2)), weights=np.array([["1", "2"]]))


def test_a_bad_reduction_lists_the_choices() -> None:
    with pytest.raises(
        DomainError, match=r"^hinge: reduction must be one of 'mean', 'sum', 'none', got 'avg'$"
    ):
        losses.hinge(np.zeros(2), np.ones(2), reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(DomainError, match=r"'mean', 'sum', 'none', 'batchmean', got 'avg'"):
        losses.kl_divergence(np.zeros((1, 2)), np.ones((1, 2)) / 2, reduction="avg")  # type: ignore[arg-type]


def test_a_float64_hyperparameter_keeps_a_float32_loss_float32() -> None:
    value, grad = losses.huber(np.ones(3, np.float32), np.zeros(3, np.float32), delta=np.float64(0.5))
    assert value.dtype == grad.dtype == np.float32
    value, grad = losses.multiclass_hinge(np.eye(3, dtype=np.float32), np.arange(3), margin=np.float64(2))
    assert value.dtype == grad.dtype == np.float32


def test_a_zero_probability_log_target_adds_nothing() -> None:
    log_q = np.log(np.array([[0.25, 0.5, 0.25]]))
    p = np.array([[0.5, 0.5, 0.0]])
    with np.errstate(divide="ignore"):
        log_p = np.log(p)  # the last entry is -inf
    by_log, grad_log = losses.kl_divergence(log_q, log_p, log_target=True, reduction="sum")
    by_prob, grad_prob = losses.kl_divergence(log_q, p, reduction="sum")
    assert np.isfinite(by_log) and by_log == pytest.approx(float(by_prob), rel=1e-15)
    np.testing.assert_array_equal(grad_log, grad_prob)
