"""Evaluation metrics: pure functions of predictions and targets returning Python floats or arrays.

Every metric takes ``(pred, target)``, the order of the losses and of ``train.fit(metrics=...)``,
so any of them can be passed to ``fit``, ``evaluate`` or ``validation`` as it is. (scikit-learn's
functions take ``(y_true, y_pred)``: swap the arguments when comparing.) The numbers follow
scikit-learn's definitions, so they can be compared directly:

* ``pred`` of a classification metric is either integer labels (an integer or boolean ``(batch,)``
  or ``(batch, 1)`` array) or the network's outputs, which :func:`predicted_labels` turns into labels:
  a single float output column (or a 1-D float vector) is binary and is thresholded (at 0 for logits,
  0.5 for probabilities); several columns are multi-class and take the ``argmax``.
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


def _pred_labels(pred: npt.ArrayLike, name: str, from_logits: bool) -> Labels:
    """Integer predictions are labels already; float outputs go through :func:`predicted_labels`."""
    p = np.asarray(pred)
    if p.dtype.kind in "biu":
        return _labels(p, name)
    return predicted_labels(p, from_logits=from_logits)


def _pair(pred: npt.ArrayLike, target: npt.ArrayLike, name: str, from_logits: bool) -> tuple[Labels, Labels]:
    """``(true, predicted)`` labels of equal length; ``target`` may hold one-hot rows."""
    t = np.asarray(target)
    labels_true = (
        np.argmax(t, axis=1).astype(np.int64) if t.ndim == 2 and t.shape[1] > 1 else _labels(t, name)
    )
    labels_pred = _pred_labels(pred, name, from_logits)
    if labels_true.shape != labels_pred.shape:
        raise ShapeError(name, f"{labels_true.shape[0]} targets but {labels_pred.shape[0]} predictions")
    return labels_true, labels_pred


def accuracy(pred: npt.ArrayLike, target: npt.ArrayLike, *, from_logits: bool = True) -> float:
    """The fraction of samples whose predicted class equals the target.

    Args:
        pred: integer labels ``(batch,)``, or network outputs (see :func:`predicted_labels`):
            ``(batch, 1)`` or ``(batch,)`` binary logits or probabilities, or ``(batch, k)`` class scores.
        target: ``(batch,)`` or ``(batch, 1)`` integer labels, or ``(batch, k)`` one-hot rows.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Example:
        >>> accuracy([[3.0], [-2.0], [0.5]], [[1], [0], [0]]), accuracy([2, 1], [2, 0])
        (0.6666666666666666, 0.5)
    """
    labels_true, labels_pred = _pair(pred, target, "accuracy", from_logits)
    if labels_true.size == 0:
        return 0.0
    return float(np.mean(labels_true == labels_pred))


def confusion_matrix(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    num_classes: int | None = None,
    from_logits: bool = True,
) -> npt.NDArray[np.int64]:
    """Counts ``C[i, j]`` of samples with true label ``i`` predicted as ``j``; ``(k, k)`` int64.

    ``k`` is ``num_classes`` or one more than the largest label seen. ``pred`` and ``target`` are
    as for :func:`accuracy`.

    Example:
        >>> confusion_matrix([0, 1, 2, 2], [0, 1, 1, 2]).tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    t, p = _pair(pred, target, "confusion_matrix", from_logits)
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
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> tuple[float, float, float]:
    """``(precision, recall, f1)`` of predictions (see the module docstring for formulas).

    Args:
        pred: ``(batch,)`` integer labels, or network outputs as for :func:`accuracy`.
        target: ``(batch,)`` or ``(batch, 1)`` integer labels, or ``(batch, k)`` one-hot rows.
        average: ``"binary"`` for the class ``pos_label`` alone, ``"macro"`` for the unweighted mean
            over the classes present.
        pos_label: the positive class for ``average="binary"``.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Example:
        >>> precision_recall_f1([1, 0, 1, 0], [1, 1, 0, 0])
        (0.5, 0.5, 0.5)
        >>> precision_recall_f1([[2.0], [-1.0], [0.5], [-3.0]], [1, 1, 0, 0])  # logits
        (0.5, 0.5, 0.5)
    """
    cm = confusion_matrix(pred, target, from_logits=from_logits)
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
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``tp / (tp + fp)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(pred, target, average=average, pos_label=pos_label, from_logits=from_logits)[0]


def recall(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``tp / (tp + fn)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(pred, target, average=average, pos_label=pos_label, from_logits=from_logits)[1]


def f1_score(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``2 tp / (2 tp + fp + fn)``; see :func:`precision_recall_f1`."""
    return precision_recall_f1(pred, target, average=average, pos_label=pos_label, from_logits=from_logits)[2]


def r2_score(pred: npt.ArrayLike, target: npt.ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged uniformly over columns.

    Not symmetric: ``SS_tot`` is the spread of ``target``, so the argument order matters.

    Args:
        pred: ``(batch,)`` or ``(batch, n_outputs)`` predictions.
        target: targets of the same shape.

    Example:
        >>> r2_score([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])
        0.5
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
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
