from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, train
from functional_dl.errors import DomainError, LabelError, ShapeError

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
    ours = metrics.confusion_matrix(y_pred, y_true, num_classes=k)
    assert np.array_equal(ours, sk.confusion_matrix(y_true, y_pred, labels=list(range(k))))


@given(label_pairs())
def test_macro_scores_match_sklearn(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, _ = pair
    p, r, f = metrics.precision_recall_f1(y_pred, y_true, average="macro")
    assert p == pytest.approx(sk.precision_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert r == pytest.approx(sk.recall_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert f == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)


@given(label_pairs(max_classes=2))
def test_binary_scores_match_sklearn(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, y_pred, _ = pair
    assert metrics.precision(y_pred, y_true) == pytest.approx(
        sk.precision_score(y_true, y_pred, zero_division=0), abs=1e-12
    )
    assert metrics.recall(y_pred, y_true) == pytest.approx(
        sk.recall_score(y_true, y_pred, zero_division=0), abs=1e-12
    )
    assert metrics.f1_score(y_pred, y_true) == pytest.approx(
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
    assert metrics.r2_score(pred, y) == pytest.approx(sk.r2_score(y, pred), rel=1e-9, abs=1e-9)
    assert metrics.r2_score(pred[:, 0], y[:, 0]) == pytest.approx(sk.r2_score(y[:, 0], pred[:, 0]), abs=1e-9)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ShapeError, match="3 targets but 2 predictions"):
        metrics.confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(LabelError, match="non-negative"):
        metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(LabelError, match="whole numbers"):
        metrics.accuracy(np.zeros((2, 1)), np.array([0.5, 1.0]))
    with pytest.raises(LabelError, match="out of range"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=2)
    with pytest.raises(ShapeError):
        metrics.r2_score([1.0], [1.0, 2.0])


@given(label_pairs())
def test_integer_predictions_are_labels_in_every_classification_metric(
    pair: tuple[np.ndarray, np.ndarray, int],
) -> None:
    # Multi-class integer predictions must not go through the binary threshold of network outputs.
    y_true, y_pred, k = pair
    assert metrics.accuracy(y_pred, y_true) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=1e-12)
    scores = np.eye(k)[y_pred] + 0.25  # class scores whose argmax is y_pred
    assert metrics.confusion_matrix(scores, y_true, num_classes=k).tolist() == (
        metrics.confusion_matrix(y_pred, y_true, num_classes=k).tolist()
    )
    assert metrics.precision_recall_f1(scores, y_true, average="macro") == (
        metrics.precision_recall_f1(y_pred, y_true, average="macro")
    )


@given(label_pairs(max_classes=2), st.sampled_from([True, False]))
def test_binary_scores_and_labels_give_the_same_metrics(
    pair: tuple[np.ndarray, np.ndarray, int], from_logits: bool
) -> None:
    y_true, y_pred, _ = pair
    threshold = 0.0 if from_logits else 0.5
    outputs = (threshold + np.where(y_pred == 1, 0.3, -0.3)).reshape(-1, 1)
    for metric in (metrics.precision, metrics.recall, metrics.f1_score, metrics.accuracy):
        assert metric(outputs, y_true, from_logits=from_logits) == metric(y_pred, y_true)


# --- every metric, passed to fit as it is, reports what scikit-learn computes -----------------------


def _fit_one_step(
    net: fdl.Layer[Any], loss: losses.LossFn, x: np.ndarray, y: np.ndarray, named: dict[str, train.Metric]
) -> tuple[train.History, fdl.Params, fdl.Params]:
    """One full-batch step with ``named`` as fit's metrics and as a validation callback's on the same data."""
    _, params = net.init(fdl.random.key(1), (None, x.shape[1]))
    opt = optim.sgd(0.1)
    result = train.fit(
        net,
        loss,
        opt,
        train.init_train_state(opt, params),
        (x, y),
        key=fdl.random.key(2),
        epochs=1,
        batch_size=len(x),
        shuffle=False,
        metrics=named,
        progress="none",
        callbacks=[train.validation(net, loss, (x, y), metrics=named)],
    )
    return result.history, params, result.train_state.params


def _check_history(
    history: train.History,
    before: np.ndarray,
    after: np.ndarray,
    y: np.ndarray,
    expected: Mapping[str, Callable[[np.ndarray, np.ndarray], float]],
) -> None:
    # fit's metric is taken on the step's predictions (params before the update), validation's after it.
    for name, sk_fn in expected.items():
        assert history[name][0] == pytest.approx(sk_fn(y, before), abs=1e-12), name
        assert history["val_" + name][0] == pytest.approx(sk_fn(y, after), abs=1e-12), name


def test_regression_metric_in_fit_matches_sklearn() -> None:
    kx, kn = fdl.random.split(fdl.random.key(0))
    x = fdl.random.normal(kx, (50, 3), np.float64)
    y = x @ np.array([[1.0, -0.5], [2.0, 0.0], [0.0, 1.0]]) + 0.3 * fdl.random.normal(kn, (50, 2), np.float64)
    net = L.dense(2, dtype=np.float64)
    history, before, after = _fit_one_step(net, losses.mean_squared_error, x, y, {"r2": metrics.r2_score})
    predict = partial(train.predict, net, x=x)
    _check_history(history, predict(before), predict(after), y, {"r2": sk.r2_score})
    # The order matters: R^2 is not symmetric, so a swapped call gives another number.
    assert metrics.r2_score(y, predict(after)) != pytest.approx(history["val_r2"][0], abs=1e-3)


def _sk_on_labels(
    y: np.ndarray, out: np.ndarray, *, fn: Callable[..., float], to_labels: Callable[[np.ndarray], np.ndarray]
) -> float:
    """scikit-learn's ``fn(y_true, y_pred)`` on the labels ``to_labels`` reads from the network outputs."""
    return float(fn(np.asarray(y).ravel(), to_labels(out)))


def test_classification_metrics_in_fit_match_sklearn() -> None:
    kx, kn = fdl.random.split(fdl.random.key(0))
    x = fdl.random.normal(kx, (60, 4), np.float64)
    y = (x[:, :1] + x[:, 1:2] + 0.5 * fdl.random.normal(kn, (60, 1), np.float64) > 0).astype(np.float64)
    net = L.dense(1, dtype=np.float64)
    named: dict[str, train.Metric] = {
        "accuracy": metrics.accuracy,
        "precision": metrics.precision,
        "recall": metrics.recall,
        "f1": metrics.f1_score,
    }
    history, before, after = _fit_one_step(net, losses.sigmoid_binary_cross_entropy, x, y, named)

    def threshold(out: np.ndarray) -> np.ndarray:
        return (out.ravel() > 0).astype(np.int64)

    expected = {
        "accuracy": partial(_sk_on_labels, fn=sk.accuracy_score, to_labels=threshold),
        "precision": partial(
            _sk_on_labels, fn=partial(sk.precision_score, zero_division=0), to_labels=threshold
        ),
        "recall": partial(_sk_on_labels, fn=partial(sk.recall_score, zero_division=0), to_labels=threshold),
        "f1": partial(_sk_on_labels, fn=partial(sk.f1_score, zero_division=0), to_labels=threshold),
    }
    predict = partial(train.predict, net, x=x)
    _check_history(history, predict(before), predict(after), y, expected)


def test_macro_metrics_in_fit_match_sklearn() -> None:
    kx, kw = fdl.random.split(fdl.random.key(0))
    x = fdl.random.normal(kx, (80, 5), np.float64)
    y = np.argmax(x @ fdl.random.normal(kw, (5, 3), np.float64), axis=1)
    net = L.dense(3, dtype=np.float64)
    named: dict[str, train.Metric] = {
        "precision": partial(metrics.precision, average="macro"),
        "recall": partial(metrics.recall, average="macro"),
        "f1": partial(metrics.f1_score, average="macro"),
    }
    history, before, after = _fit_one_step(net, losses.softmax_cross_entropy, x, y, named)

    def argmax(out: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(out, axis=1))

    expected = {
        name: partial(_sk_on_labels, fn=partial(fn, average="macro", zero_division=0), to_labels=argmax)
        for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score))
    }
    predict = partial(train.predict, net, x=x)
    _check_history(history, predict(before), predict(after), y, expected)


def test_a_nan_prediction_gives_a_nan_score_and_integer_results_refuse_it() -> None:
    scores = np.array([[0.1, 0.9], [np.nan, 0.0]])
    y = np.array([1, 0])
    for metric in (metrics.accuracy, metrics.precision, metrics.recall, metrics.f1_score):
        assert np.isnan(metric(scores, y))  # not the 1.0 that argmax's treatment of NaN gave
    with pytest.raises(DomainError, match=r"^confusion_matrix: predictions contain NaN"):
        metrics.confusion_matrix(scores, y)
    with pytest.raises(DomainError, match=r"^predicted_labels: predictions contain NaN"):
        metrics.predicted_labels(scores)


def test_empty_input_non_one_hot_targets_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"^accuracy: no samples"):
        metrics.accuracy(np.zeros((0, 3)), np.zeros(0, np.int64))
    with pytest.raises(LabelError, match=r"^accuracy: a \(batch, k\) target must hold one-hot rows"):
        metrics.accuracy(np.zeros((2, 2)), np.array([[0.3, 0.7], [0.5, 0.5]]))
    with pytest.raises(DomainError, match=r"^precision: pos_label must be an int >= 0, got int -1"):
        metrics.precision([0, 1], [0, 1], pos_label=-1)  # once it read the last class
    with pytest.raises(
        DomainError, match=r"^f1_score: average must be one of 'binary', 'macro', got 'micro'"
    ):
        metrics.f1_score([0, 1], [0, 1], average="micro")  # type: ignore[arg-type]


@given(label_pairs(max_classes=5))
def test_binary_average_is_refused_where_sklearn_refuses_it(pair: tuple[np.ndarray, np.ndarray, int]) -> None:
    # More than two classes, or two without pos_label: a binary score would be meaningless.
    y_true, y_pred, _ = pair
    for pos_label in (0, 1, 2):
        try:
            expected: float | None = sk.precision_score(y_true, y_pred, pos_label=pos_label, zero_division=0)
        except ValueError:
            expected = None
        if expected is None:
            with pytest.raises(LabelError, match=r"^precision: (average='binary' needs|pos_label must)"):
                metrics.precision(y_pred, y_true, pos_label=pos_label)
        else:
            assert metrics.precision(y_pred, y_true, pos_label=pos_label) == pytest.approx(
                expected, abs=1e-12
            )


def test_binary_average_on_three_classes_names_them() -> None:
    with pytest.raises(
        LabelError, match=r"^f1_score: average='binary' needs at most 2 classes, got 3 \(0, 1, 2\)"
    ):
        metrics.f1_score([0, 1, 2], [0, 1, 1])
    with pytest.raises(
        LabelError, match=r"^recall: pos_label must be one of the two classes present, 0 and 2, got 1"
    ):
        metrics.recall([0, 2], [2, 0])


@given(label_pairs())
def test_scores_do_not_depend_on_how_the_classes_are_numbered(
    pair: tuple[np.ndarray, np.ndarray, int],
) -> None:
    # precision_recall_f1 counts the classes present, so relabelling 0..k-1 to huge numbers changes nothing.
    y_true, y_pred, _ = pair
    huge = np.array([3, 10**6, 10**12, 2**62, 7])
    binary = np.union1d(y_true, y_pred).size <= 2 and 1 in np.union1d(y_true, y_pred)
    for average in ("macro", "binary") if binary else ("macro",):
        pos = 1 if average == "binary" else 0
        ours = metrics.precision_recall_f1(
            huge[y_pred], huge[y_true], average=average, pos_label=int(huge[pos])
        )
        small = metrics.precision_recall_f1(y_pred, y_true, average=average, pos_label=pos)
        assert ours == pytest.approx(small, abs=1e-15)
