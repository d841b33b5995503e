"""Evaluation metrics: pure functions of predictions and targets returning Python floats or arrays.

Conventions (those of scikit-learn, so numbers can be compared directly):

* Class predictions are integer labels. :func:`predicted_labels` turns network outputs into labels:
  a single output column (or a 1-D vector) is binary and is thresholded (at 0 for logits, 0.5 for
  probabilities); several columns are multi-class and take the ``argmax``.
* ``confusion_matrix[i, j]`` counts samples of true class ``i`` predicted as class ``j``.
* With ``tp``, ``fp``, ``fn`` the true positives, false positives and false negatives of a class::

      precision = tp / (tp + fp)      recall = tp / (tp + fn)
      f1 = 2 tp / (2 tp + fp + fn)    (the harmonic mean of precision and recall)

  A ratio whose denominator is 0 is 0 (scikit-learn's ``zero_division=0``). ``average="binary"``
  reports the class ``pos_label``; ``"macro"`` is the unweighted mean over the classes present in
  either the targets or the predictions.
* ``r2_score = 1 - sum((y - y_hat)^2) / sum((y - mean(y))^2)``, averaged uniformly over output
  columns; a column with constant targets scores 1 if predicted exactly, else 0.

Every function here is vectorised (``bincount`` over ``true * k + pred``); none loops over samples.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from functional_dl.errors import LabelError, ShapeError, describe_shape

__all__ = [
    "accuracy",
    "confusion_matrix",
    "f1_score",
    "precision",
    "precision_recall_f1",
    "predicted_labels",
    "r2_score",
    "recall",
]

Average = Literal["binary", "macro"]
Labels = npt.NDArray[np.integer[Any]]


def predicted_labels(pred: npt.ArrayLike, *, from_logits: bool = True) -> Labels:
    """Integer class labels from network outputs.

    Args:
        pred: ``(batch,)`` or ``(batch, 1)`` binary scores, or ``(batch, k)`` class scores.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Returns:
        ``(batch,)`` int64 labels: ``pred > threshold`` for binary outputs, ``argmax`` otherwise.

    Example:
        >>> predicted_labels([[2.0], [-1.0]]).tolist(), predicted_labels([[0.1, 0.9]]).tolist()
        ([1, 0], [1])
    """
    p = np.asarray(pred)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        threshold = 0.0 if from_logits else 0.5
        return (p.reshape(-1) > threshold).astype(np.int64)
    if p.ndim == 2:
        labels: Labels = np.argmax(p, axis=1).astype(np.int64)
        return labels
    raise ShapeError(
        "predicted_labels", f"expected (batch,) or (batch, k) scores, got {describe_shape(p.shape)}"
    )


def _labels(target: npt.ArrayLike, name: str) -> Labels:
    t = np.asarray(target)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t.reshape(-1)
    if t.ndim != 1:
        raise ShapeError(name, f"expected (batch,) labels, got {describe_shape(t.shape)}")
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise LabelError(name, "labels must be whole numbers")
    elif t.dtype.kind not in "biu":
        raise LabelError(name, f"labels must be integers, got dtype {t.dtype}")
    if t.size and t.min() < 0:
        raise LabelError(name, f"labels must be non-negative, got {t.min()}")
    return t.astype(np.int64)


def _pair(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, name: str) -> tuple[Labels, Labels]:
    t, p = _labels(y_true, name), _labels(y_pred, name)
    if t.shape != p.shape:
        raise ShapeError(name, f"{t.shape[0]} targets but {p.shape[0]} predictions")
    return t, p


def accuracy(pred: npt.ArrayLike, target: npt.ArrayLike, *, from_logits: bool = True) -> float:
    """The fraction of samples whose predicted class equals the target.

    Args:
        pred: network outputs (see :func:`predicted_labels`): ``(batch, 1)`` or ``(batch,)`` binary
            logits or probabilities, or ``(batch, k)`` class scores.
        target: ``(batch,)`` or ``(batch, 1)`` integer labels, or ``(batch, k)`` one-hot rows.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Example:
        >>> accuracy([[3.0], [-2.0], [0.5]], [[1], [0], [0]])
        0.6666666666666666
    """
    t = np.asarray(target)
    labels_true = np.argmax(t, axis=1) if t.ndim == 2 and t.shape[1] > 1 else _labels(t, "accuracy")
    labels_pred = predicted_labels(pred, from_logits=from_logits)
    if labels_true.shape != labels_pred.shape:
        raise ShapeError("accuracy", f"{labels_true.shape[0]} targets but {labels_pred.shape[0]} predictions")
    if labels_true.size == 0:
        return 0.0
    return float(np.mean(labels_true == labels_pred))


def confusion_matrix(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, num_classes: int | None = None
) -> npt.NDArray[np.int64]:
    """Counts ``C[i, j]`` of samples with true label ``i`` predicted as ``j``; ``(k, k)`` int64.

    ``k`` is ``num_classes`` or one more than the largest label seen.

    Example:
        >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    t, p = _pair(y_true, y_pred, "confusion_matrix")
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    k = seen if num_classes is None else num_classes
    if seen > k:
        raise LabelError("confusion_matrix", f"a label {seen - 1} is out of range for {k} classes")
    counts: npt.NDArray[np.int64] = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)
    return counts


def _ratio(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.divide(
        num, den, out=np.zeros(num.shape, np.float64), where=den > 0, dtype=np.float64
    )
    return out


def precision_recall_f1(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, average: Average = "binary", pos_label: int = 1
) -> tuple[float, float, float]:
    """``(precision, recall, f1)`` of label predictions (see the module docstring for formulas).

    Args:
        y_true: ``(batch,)`` integer labels.
        y_pred: ``(batch,)`` predicted labels (:func:`predicted_labels` makes them from scores).
        average: ``"binary"`` for the class ``pos_label`` alone, ``"macro"`` for the unweighted mean
            over the classes present.
        pos_label: the positive class for ``average="binary"``.

    Example:
        >>> precision_recall_f1([1, 1, 0, 0], [1, 0, 1, 0])
        (0.5, 0.5, 0.5)
    """
    cm = confusion_matrix(y_true, y_pred)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    fp, fn = predicted - tp, actual - tp
    per_class = _ratio(tp, predicted), _ratio(tp, actual), _ratio(2 * tp, 2 * tp + fp + fn)
    if average == "binary":
        if pos_label >= cm.shape[0]:
            return 0.0, 0.0, 0.0
        p, r, f = (float(m[pos_label]) for m in per_class)
        return p, r, f
    if average == "macro":
        present = (predicted + actual) > 0
        if not present.any():
            return 0.0, 0.0, 0.0
        p, r, f = (float(m[present].mean()) for m in per_class)
        return p, r, f
    raise ValueError(f"precision_recall_f1: average must be 'binary' or 'macro', got {average!r}")


def precision(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, average: Average = "binary", pos_label: int = 1
) -> float:
    """``tp / (tp + fp)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average=average, pos_label=pos_label)[0]


def recall(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, average: Average = "binary", pos_label: int = 1
) -> float:
    """``tp / (tp + fn)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average=average, pos_label=pos_label)[1]


def f1_score(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, average: Average = "binary", pos_label: int = 1
) -> float:
    """``2 tp / (2 tp + fp + fn)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, average=average, pos_label=pos_label)[2]


def r2_score(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged uniformly over columns.

    Args:
        y_true: ``(batch,)`` or ``(batch, n_outputs)`` targets.
        y_pred: predictions of the same shape.

    Example:
        >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        0.5
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim not in (1, 2) or t.shape[0] < 1:
        raise ShapeError(
            "r2_score", f"targets {describe_shape(t.shape)} and predictions {describe_shape(p.shape)} differ"
        )
    t2, p2 = t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)
    ss_res = np.sum((t2 - p2) ** 2, axis=0)
    ss_tot = np.sum((t2 - t2.mean(axis=0)) ** 2, axis=0)
    constant = ss_tot == 0
    scores = np.where(
        constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - ss_res / np.where(constant, 1.0, ss_tot)
    )
    return float(scores.mean())
