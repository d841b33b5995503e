from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl import metrics
from functional_dl.errors import LabelError, ShapeError

sk = pytest.importorskip("sklearn.metrics")


@st.composite
def label_pairs(draw: st.DrawFn, max_classes: int = 5) -> tuple[np.ndarray, np.ndarray, int]:
    k = draw(st.integers(2, max_classes))
    n = draw(st.integers(1, 40))
    labels = hnp.arrays(np.int64, n, elements=st.integers(0, k - 1))
    return draw(labels), draw(labels), k


@given(label_pairs())
def test_confusion_matrix_matches_sklearn(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, k = pair
    ours = metrics.confusion_matrix(y_true, y_pred, num_classes=k)
    assert np.array_equal(ours, sk.confusion_matrix(y_true, y_pred, labels=list(range(k))))


@given(label_pairs())
def test_macro_scores_match_sklearn(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, _ = pair
    p, r, f = metrics.precision_recall_f1(y_true, y_pred, average="macro")
    assert p == pytest.approx(sk.precision_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert r == pytest.approx(sk.recall_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert f == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)


@given(label_pairs(max_classes=2))
def test_binary_scores_match_sklearn(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, _ = pair
    assert metrics.precision(y_true, y_pred) == pytest.approx(
        sk.precision_score(y_true, y_pred, zero_division=0), abs=1e-12
    )
    assert metrics.recall(y_true, y_pred) == pytest.approx(
        sk.recall_score(y_true, y_pred, zero_division=0), abs=1e-12
    )
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(
        sk.f1_score(y_true, y_pred, zero_division=0), abs=1e-12
    )
    assert metrics.accuracy(y_pred, y_true) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=1e-12)


finite = st.floats(-10, 10, allow_nan=False, width=32)


@given(st.integers(1, 30), st.integers(2, 6), st.data())
def test_multiclass_accuracy_from_scores(n: int, k: int, data: st.DataObject) -> None:
    scores = data.draw(hnp.arrays(np.float64, (n, k), elements=finite))
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    expected = sk.accuracy_score(y, scores.argmax(axis=1))
    assert metrics.accuracy(scores, y) == pytest.approx(expected, abs=1e-12)
    assert metrics.accuracy(scores, np.eye(k)[y]) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 30), st.data())
def test_binary_accuracy_from_logits_and_probs(n: int, data: st.DataObject) -> None:
    logits = data.draw(hnp.arrays(np.float64, (n, 1), elements=finite.filter(lambda v: v != 0)))
    y = data.draw(hnp.arrays(np.int64, (n, 1), elements=st.integers(0, 1)))
    expected = sk.accuracy_score(y.ravel(), (logits.ravel() > 0).astype(int))
    assert metrics.accuracy(logits, y) == pytest.approx(expected, abs=1e-12)
    probs = 1 / (1 + np.exp(-logits))
    probs = probs[np.abs(probs - 0.5) > 1e-9].reshape(-1, 1)
    if probs.size:
        keep = np.abs(1 / (1 + np.exp(-logits)) - 0.5).ravel() > 1e-9
        assert metrics.accuracy(probs, y[keep], from_logits=False) == pytest.approx(
            sk.accuracy_score(y[keep].ravel(), (probs.ravel() > 0.5).astype(int)), abs=1e-12
        )


@given(st.integers(2, 30), st.integers(1, 3), st.data())
def test_r2_matches_sklearn(n: int, cols: int, data: st.DataObject) -> None:
    y = data.draw(hnp.arrays(np.float64, (n, cols), elements=finite))
    pred = data.draw(hnp.arrays(np.float64, (n, cols), elements=finite))
    assert metrics.r2_score(y, pred) == pytest.approx(sk.r2_score(y, pred), rel=1e-9, abs=1e-9)
    assert metrics.r2_score(y[:, 0], pred[:, 0]) == pytest.approx(sk.r2_score(y[:, 0], pred[:, 0]), abs=1e-9)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ShapeError, match="3 targets but 2 predictions"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(LabelError, match="non-negative"):
        metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(LabelError, match="whole numbers"):
        metrics.accuracy(np.zeros((2, 1)), np.array([0.5, 1.0]))
    with pytest.raises(LabelError, match="out of range"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=2)
    with pytest.raises(ShapeError):
        metrics.r2_score([1.0, 2.0], [1.0])
