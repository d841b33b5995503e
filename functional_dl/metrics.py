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
  reports the class ``pos_label`` of labels with at most two classes (more, or two without
  ``pos_label``, are a :class:`~functional_dl.errors.LabelError`, as in scikit-learn);
  ``"macro"`` is the unweighted mean over the classes present in either the targets or the
  predictions.
* ``r2_score = 1 - sum((y - y_hat)^2) / sum((y - mean(y))^2)``, averaged uniformly over output
  columns; a column with constant targets scores 1 if predicted exactly, else 0.

What a metric takes: ``pred`` and ``target`` may be arrays or array-likes (lists), converted once
with ``np.asarray`` by the library's array-like rule (:mod:`functional_dl._arraylike`: strings, even
numeric ones, objects, complex numbers and masked arrays are refused). Then:

* the sample axis comes first and ``pred`` and ``target`` have the same number of samples (at least
  one: a score of no samples is undefined, a :class:`~functional_dl.errors.ShapeError`);
* class labels are whole numbers ``>= 0`` (integers, booleans, or floats such as ``1.0``); NaN,
  infinite, fractional and negative labels are a :class:`~functional_dl.errors.LabelError`, and so
  is a ``(batch, k)`` target whose rows are not one-hot;
* a NaN prediction makes the score NaN, as it makes a loss NaN (a diverged network shows in the
  logs instead of stopping ``fit``); the integer results (:func:`confusion_matrix`,
  :func:`predicted_labels`) cannot hold NaN and refuse it with a
  :class:`~functional_dl.errors.DomainError`. Infinite scores are ordinary scores (``+inf`` wins);
* NaN or infinite regression targets (:func:`r2_score`) are a ``LabelError``;
* keyword arguments (``average``, ``pos_label``, ``num_classes``, ``from_logits``) outside their
  choices are a ``DomainError`` listing them.

Every function here is vectorised (``bincount`` over ``true * k + pred``, ``unique`` over the
labels); none loops over samples. Precision, recall and F1 count the classes present (never a
``k x k`` matrix), so a label of ``10**9`` costs nothing; :func:`confusion_matrix` refuses to
allocate more than ``MAX_CONFUSION_CLASSES`` classes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from functional_dl._arraylike import as_numeric
from functional_dl.errors import DomainError, LabelError, ShapeError, describe_shape

__all__ = [
    "MAX_CONFUSION_CLASSES",
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

#: The most classes :func:`confusion_matrix` makes a matrix for (``k * k`` int64 counts: 2 GiB).
MAX_CONFUSION_CLASSES = 2**14

_AVERAGES = ("binary", "macro")


def _check_flag(value: object, name: str, where: str) -> None:
    if not isinstance(value, bool | np.bool_):
        raise DomainError(where, f"{name} must be True or False, got {type(value).__name__} {value!r}")


def _check_count(value: object, name: str, where: str, minimum: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or value < minimum:
        raise DomainError(where, f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    return int(value)


def _scores(pred: npt.ArrayLike, name: str) -> npt.NDArray[Any]:
    return as_numeric(pred, "predictions", name)


def _threshold_or_argmax(p: npt.NDArray[Any], name: str, from_logits: bool) -> Labels:
    """Labels from float outputs: a threshold for one column (or a vector), the argmax of several."""
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        threshold = 0.0 if from_logits else 0.5
        return (p.reshape(-1) > threshold).astype(np.int64)
    if p.ndim == 2 and p.shape[1] > 1:
        labels: Labels = np.argmax(p, axis=1).astype(np.int64)
        return labels
    raise ShapeError(name, f"expected (batch,) or (batch, k) scores, got {describe_shape(p.shape)}")


def predicted_labels(pred: npt.ArrayLike, *, from_logits: bool = True) -> Labels:
    """Integer class labels from network outputs.

    Args:
        pred: ``(batch,)`` or ``(batch, 1)`` binary scores, or ``(batch, k)`` class scores.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Returns:
        ``(batch,)`` int64 labels: ``pred > threshold`` for binary outputs, ``argmax`` otherwise.

    Raises:
        ShapeError: not ``(batch,)``, ``(batch, 1)`` or ``(batch, k)``.
        DTypeError: non-numeric scores.
        DomainError: a NaN score (it has no label).

    Example:
        >>> predicted_labels([[2.0], [-1.0]]).tolist(), predicted_labels([[0.1, 0.9]]).tolist()
        ([1, 0], [1])
    """
    _check_flag(from_logits, "from_logits", "predicted_labels")
    p = _scores(pred, "predicted_labels")
    if p.dtype.kind == "f" and np.isnan(p).any():
        raise DomainError("predicted_labels", "predictions contain NaN, which has no class label")
    return _threshold_or_argmax(p, "predicted_labels", from_logits)


def _whole(t: npt.NDArray[Any], name: str, what: str) -> Labels:
    """Integers, booleans or whole floats ``>= 0`` as int64 labels; anything else a LabelError."""
    if t.dtype.kind == "f":
        if not np.isfinite(t).all():
            raise LabelError(name, f"{what} labels must be whole numbers, got NaN or infinity")
        if (t != np.round(t)).any():
            raise LabelError(name, f"{what} labels must be whole numbers, got fractional values")
    if t.size and t.min() < 0:
        raise LabelError(name, f"{what} labels must be non-negative, got {t.min()}")
    if t.dtype.kind in "fu" and t.size and t.max() >= 2**63:  # would wrap or overflow in the cast
        raise LabelError(name, f"{what} label {t.max()} is too large for a class index")
    return t.astype(np.int64)


def _target_labels(target: npt.ArrayLike, name: str) -> tuple[Labels, tuple[int, ...]]:
    """``(batch,)`` or ``(batch, 1)`` labels, or ``(batch, k)`` one-hot rows, as ``(batch,)`` labels.

    Returns the labels and the target's shape.
    """
    t = as_numeric(target, "target", name, error=LabelError)
    shape = t.shape
    if t.ndim == 2 and t.shape[1] > 1:
        rows_ok = np.isin(t, (0, 1)).all() and (t.sum(axis=1) == 1).all()
        if not rows_ok:
            raise LabelError(
                name,
                f"a (batch, k) target must hold one-hot rows (a single 1 per row), got {t.dtype} rows",
            )
        onehot: Labels = np.argmax(t, axis=1).astype(np.int64)
        return onehot, shape
    if t.ndim == 2 and t.shape[1] == 1:
        t = t.reshape(-1)
    if t.ndim != 1:
        raise ShapeError(
            name,
            "expected (batch,) labels, (batch, 1) labels or (batch, k) one-hot rows, "
            f"got {describe_shape(t.shape)}",
        )
    return _whole(t, name, "target"), shape


def _pred_labels(pred: npt.ArrayLike, name: str, from_logits: bool) -> tuple[Labels | None, tuple[int, ...]]:
    """Predicted labels (``None`` when a prediction is NaN) and the predictions' shape.

    Integer and boolean predictions are labels already; float outputs go through the threshold or
    the argmax of :func:`predicted_labels`.
    """
    p = _scores(pred, name)
    shape = p.shape
    if p.ndim == 0:
        raise ShapeError(name, "expected predictions with a sample axis, got a scalar")
    if p.dtype.kind in "biu":
        if p.ndim == 2 and p.shape[1] == 1:
            p = p.reshape(-1)
        if p.ndim != 1:
            raise ShapeError(
                name, f"expected (batch,) integer labels as predictions, got {describe_shape(shape)}"
            )
        return _whole(p, name, "predicted"), shape
    labels = _threshold_or_argmax(p, name, from_logits)
    return (None if np.isnan(p).any() else labels), shape


def _pair(
    pred: npt.ArrayLike, target: npt.ArrayLike, name: str, from_logits: bool
) -> tuple[Labels, Labels | None]:
    """``(true, predicted)`` labels of one non-zero length; ``predicted`` is ``None`` for NaN outputs."""
    _check_flag(from_logits, "from_logits", name)
    labels_true, t_shape = _target_labels(target, name)
    labels_pred, p_shape = _pred_labels(pred, name, from_logits)
    shapes = f"(target of shape {describe_shape(t_shape)}, predictions of shape {describe_shape(p_shape)})"
    if labels_true.shape[0] != p_shape[0]:
        raise ShapeError(name, f"{labels_true.shape[0]} targets but {p_shape[0]} predictions {shapes}")
    if len(t_shape) == len(p_shape) == 2 and t_shape[1] > 1 and p_shape[1] > 1 and t_shape[1] != p_shape[1]:
        raise ShapeError(name, f"one-hot targets and class scores count different classes {shapes}")
    n_pred = p_shape[0]
    if n_pred == 0:
        raise ShapeError(name, "no samples: a score of an empty set is undefined")
    return labels_true, labels_pred


def accuracy(pred: npt.ArrayLike, target: npt.ArrayLike, *, from_logits: bool = True) -> float:
    """The fraction of samples whose predicted class equals the target (NaN if a prediction is NaN).

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
    if labels_pred is None:
        return float("nan")
    return float(np.count_nonzero(labels_true == labels_pred) / labels_true.size)


def confusion_matrix(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    num_classes: int | None = None,
    from_logits: bool = True,
) -> npt.NDArray[np.int64]:
    """Counts ``C[i, j]`` of samples with true label ``i`` predicted as ``j``; ``(k, k)`` int64.

    ``k`` is ``num_classes`` or one more than the largest label seen, at most
    :data:`MAX_CONFUSION_CLASSES`. ``pred`` and ``target`` are as for :func:`accuracy`.

    Raises:
        LabelError: a label ``>= num_classes`` (and the bad labels of :func:`accuracy`).
        DomainError: a NaN prediction, a bad ``num_classes``, or more classes than
            :data:`MAX_CONFUSION_CLASSES`.

    Example:
        >>> confusion_matrix([0, 1, 2, 2], [0, 1, 1, 2]).tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    name = "confusion_matrix"
    if num_classes is not None:
        _check_count(num_classes, "num_classes", name, 1)
    t, p = _pair(pred, target, name, from_logits)
    if p is None:
        raise DomainError(name, "predictions contain NaN, which has no class label to count")
    seen = int(max(t.max(), p.max())) + 1
    k = seen if num_classes is None else int(num_classes)
    if seen > k:
        raise LabelError(name, f"a label {seen - 1} is out of range for {k} classes")
    if k > MAX_CONFUSION_CLASSES:
        raise DomainError(
            name,
            f"{k} classes would make a {k} x {k} matrix; at most {MAX_CONFUSION_CLASSES} classes "
            "(relabel the classes 0..k-1, or use precision_recall_f1, which counts only the classes present)",
        )
    counts: npt.NDArray[np.int64] = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)
    return counts


def _ratio(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.divide(
        num, den, out=np.zeros(num.shape, np.float64), where=den > 0, dtype=np.float64
    )
    return out


def _per_class_counts(
    t: Labels, p: Labels
) -> tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The classes present in either labelling, and their true positives, predicted and actual counts.

    The labels are renumbered ``0..m-1`` over the ``m`` classes present, so the work is
    ``O(n log n)`` whatever the labels' values (the diagonal and the margins of the confusion
    matrix, without the matrix).
    """
    classes, inverse = np.unique(np.concatenate([t, p]), return_inverse=True)
    m = classes.size
    ti, pi = inverse[: t.size], inverse[t.size :]
    tp = np.bincount(ti[ti == pi], minlength=m).astype(np.int64)
    return (
        classes,
        tp,
        np.bincount(pi, minlength=m).astype(np.int64),
        np.bincount(ti, minlength=m).astype(np.int64),
    )


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
        pos_label: the positive class for ``average="binary"``, an int ``>= 0``.
        from_logits: binary scores are logits (threshold 0) rather than probabilities (0.5).

    Returns:
        Three floats; all NaN if a prediction is NaN.

    Example:
        >>> precision_recall_f1([1, 0, 1, 0], [1, 1, 0, 0])
        (0.5, 0.5, 0.5)
        >>> precision_recall_f1([[2.0], [-1.0], [0.5], [-3.0]], [1, 1, 0, 0])  # logits
        (0.5, 0.5, 0.5)
    """
    return _precision_recall_f1(pred, target, (average, pos_label, from_logits), "precision_recall_f1")


def _precision_recall_f1(
    pred: npt.ArrayLike, target: npt.ArrayLike, options: tuple[object, object, bool], name: str
) -> tuple[float, float, float]:
    average, pos_label, from_logits = options
    if type(average) is not str or average not in _AVERAGES:
        raise DomainError(name, f"average must be one of {', '.join(map(repr, _AVERAGES))}, got {average!r}")
    label = _check_count(pos_label, "pos_label", name, 0)
    t, p = _pair(pred, target, name, from_logits)
    if p is None:
        return float("nan"), float("nan"), float("nan")
    classes, tp, predicted, actual = _per_class_counts(t, p)
    fp, fn = predicted - tp, actual - tp
    per_class = _ratio(tp, predicted), _ratio(tp, actual), _ratio(2 * tp, 2 * tp + fp + fn)
    if average == "binary":
        _check_binary(classes, label, name)
        where = np.flatnonzero(classes == label)
        if not where.size:  # one class only, and not the positive one: no true positive to count
            return 0.0, 0.0, 0.0
        pr, rc, f = (float(m[where[0]]) for m in per_class)
        return pr, rc, f
    pr, rc, f = (float(m.mean()) for m in per_class)
    return pr, rc, f


def _check_binary(classes: Labels, pos_label: int, name: str) -> None:
    """``average="binary"`` scores one class of two: more classes, or two without ``pos_label``, are refused.

    Reporting ``pos_label``'s score on multi-class data would look like a binary score and is not one
    (scikit-learn raises too).
    """
    if classes.size > 2:
        shown = ", ".join(str(c) for c in classes[:5]) + (", ..." if classes.size > 5 else "")
        raise LabelError(
            name,
            f"average='binary' needs at most 2 classes, got {classes.size} ({shown}) in the targets and"
            " predictions: pass average='macro', or labels of two classes",
        )
    if classes.size == 2 and pos_label not in classes:
        raise LabelError(
            name,
            f"pos_label must be one of the two classes present, {int(classes[0])} and {int(classes[1])},"
            f" got {pos_label}",
        )


def precision(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``tp / (tp + fp)``; see :func:`precision_recall_f1`."""
    return _precision_recall_f1(pred, target, (average, pos_label, from_logits), "precision")[0]


def recall(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``tp / (tp + fn)``; see :func:`precision_recall_f1`."""
    return _precision_recall_f1(pred, target, (average, pos_label, from_logits), "recall")[1]


def f1_score(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    average: Average = "binary",
    pos_label: int = 1,
    from_logits: bool = True,
) -> float:
    """``2 tp / (2 tp + fp + fn)``; see :func:`precision_recall_f1`."""
    return _precision_recall_f1(pred, target, (average, pos_label, from_logits), "f1_score")[2]


def r2_score(pred: npt.ArrayLike, target: npt.ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, averaged uniformly over columns.

    Not symmetric: ``SS_tot`` is the spread of ``target``, so the argument order matters.

    Args:
        pred: ``(batch,)`` or ``(batch, n_outputs)`` predictions; a NaN makes the score NaN.
        target: targets of the same shape, finite.

    Raises:
        ShapeError: shapes that differ, no sample, no output column, or more than two axes.
        LabelError: a NaN or infinite target.

    Example:
        >>> r2_score([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])
        0.5
    """
    name = "r2_score"
    p = as_numeric(pred, "predictions", name).astype(np.float64, copy=False)
    t = as_numeric(target, "target", name, error=LabelError).astype(np.float64, copy=False)
    if t.shape != p.shape or t.ndim not in (1, 2):
        raise ShapeError(
            name,
            f"expected predictions and target of one shape, (batch,) or (batch, n_outputs); "
            f"got predictions {describe_shape(p.shape)} and target {describe_shape(t.shape)}",
        )
    if t.shape[0] < 1 or t.size == 0:
        raise ShapeError(
            name, f"no samples or no outputs: a score of shape {describe_shape(t.shape)} is undefined"
        )
    if not np.isfinite(t).all():
        raise LabelError(name, "target contains NaN or infinity (targets must be finite)")
    t2, p2 = t.reshape(t.shape[0], -1), p.reshape(p.shape[0], -1)
    with np.errstate(over="ignore", invalid="ignore"):  # huge or infinite predictions give -inf or NaN
        ss_res = np.sum((t2 - p2) ** 2, axis=0)
        ss_tot = np.sum((t2 - t2.mean(axis=0)) ** 2, axis=0)
        constant = ss_tot == 0
        scores = np.where(
            constant, np.where(ss_res == 0, 1.0, 0.0), 1.0 - ss_res / np.where(constant, 1.0, ss_tot)
        )
        scores = np.where(np.isnan(ss_res), np.nan, scores)
    return float(scores.mean())
