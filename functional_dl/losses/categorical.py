"""Softmax cross-entropy from logits, with integer labels or probability targets, and label smoothing.

Logits are ``(N, C)`` (or ``(N, C, d1, ...)`` with classes on axis 1, as in PyTorch). With
``log p = log_softmax(z)`` along the class axis and a target distribution ``q`` per sample::

    l = -sum_c q_c log p_c                    dl/dz = p sum_c q_c - q    (= p - q when q sums to 1)

* integer labels ``y`` (shape ``(N, d1, ...)``): ``q = onehot(y)``;
* probability (soft) targets (logits' shape): ``q = t``;
* label smoothing ``e`` (as ``torch.nn.CrossEntropyLoss(label_smoothing=e)``): ``q`` becomes
  ``(1 - e) q + e / C``.

This is ``torch.nn.functional.cross_entropy`` without class weights or ``ignore_index``; the
optional ``weights`` here are per sample (they multiply the per-sample losses, and ``"mean"``
divides by the number of samples, not by the sum of weights). Because it works from
``log_softmax`` (max-shifted), it is finite and exact for logits of any magnitude, ``+-1e4``
included: it never takes the log of a probability that has underflowed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl._arraylike import as_numeric
from functional_dl._math import log_softmax
from functional_dl.errors import LabelError, ShapeError, describe_shape
from functional_dl.losses._common import (
    Reduction,
    as_prediction,
    check_finite_target,
    check_reduction,
    quiet,
    real_hyperparameter,
    reduce_loss,
)
from functional_dl.types import Array, IntArray

__all__ = ["class_labels", "cross_entropy", "softmax_cross_entropy"]

_NAME = "softmax_cross_entropy"


def class_labels(target: npt.NDArray[np.generic], n_classes: int, loss: str) -> IntArray:
    """``target`` as integer class indices in ``[0, n_classes)``, or a :class:`LabelError`.

    Float labels are accepted when every value is a whole number (labels read from a CSV file);
    NaN, fractions and out-of-range values are refused with the offending value in the message.
    """
    if target.dtype.kind in "iu":
        labels: IntArray = target.astype(np.intp, copy=False)
    elif target.dtype.kind == "f":
        as_float = target.astype(np.float64, copy=False)
        if not np.isfinite(as_float).all():
            raise LabelError(loss, "labels contain NaN or infinity")
        if (as_float != np.round(as_float)).any():
            raise LabelError(loss, "labels must be whole numbers (class indices), got fractional values")
        _check_range(as_float, n_classes, loss)  # before the cast, which a huge float would overflow
        return as_float.astype(np.intp)
    else:
        raise LabelError(loss, f"expected integer class labels, got dtype {target.dtype}")
    _check_range(labels, n_classes, loss)
    return labels


def _check_range(labels: npt.NDArray[np.generic], n_classes: int, loss: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels.min() if labels.min() < 0 else labels.max()
        shown = int(bad) if float(bad).is_integer() and abs(float(bad)) < 2**63 else bad
        raise LabelError(loss, f"label {shown} is out of range for {n_classes} classes (0..{n_classes - 1})")


def softmax_cross_entropy(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Cross-entropy of ``softmax(logits)`` against class labels or target probabilities.

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ...)`` raw scores, classes on axis 1.
        target: integer labels of shape ``(N,)`` (or ``(N, d1, ...)``) in ``[0, C)``, or
            probabilities of the logits' shape (PyTorch decides the same way: indices if the shape
            lacks the class axis, probabilities if it matches).
        label_smoothing: ``e`` in ``[0, 1]``: the target becomes ``(1 - e) q + e / C``.
        reduction: ``"mean"`` over samples (default), ``"sum"`` or ``"none"`` (one loss per sample).
        weights: optional per-sample multipliers broadcastable to ``(N, d1, ...)``.

    Returns:
        ``(value, dlogits)``; ``dlogits`` has the logits' shape and dtype.

    Raises:
        ShapeError: logits without a class axis (or with no class), or a target of neither
            accepted shape.
        LabelError: NaN, fractional or out-of-range labels; NaN, infinite or negative probabilities.
        DomainError: a ``label_smoothing`` outside ``[0, 1]`` or a bad ``reduction``.

    Example:
        >>> import numpy as np
        >>> value, grad = softmax_cross_entropy(np.array([[1e4, 0.0], [0.0, 0.0]]), np.array([0, 1]))
        >>> round(float(value), 6), grad.round(3).tolist()
        (0.346574, [[0.0, 0.0], [0.25, -0.25]])
    """
    check_reduction(reduction, _NAME)
    z = as_prediction(logits, _NAME)
    t = as_numeric(target, "target", _NAME, error=LabelError)
    smoothing = (
        label_smoothing
        if type(label_smoothing) is float and 0.0 <= label_smoothing <= 1.0
        else real_hyperparameter(label_smoothing, "label_smoothing", _NAME, low=0.0, high=1.0)
    )
    if z.ndim == 2 and not smoothing and t.shape == z.shape[:1] and z.shape[1]:
        labels = class_labels(t, z.shape[1], _NAME)
        with quiet():
            losses, dlogits = _hard_labels_fast(z, labels)
            return reduce_loss(losses, dlogits, reduction, weights, _NAME, class_axis=1)
    if z.ndim < 2:
        raise ShapeError(_NAME, f"expected logits (N, C, ...), got {describe_shape(z.shape)}")
    if not z.shape[1]:
        raise ShapeError(
            _NAME, f"expected logits (N, C, ...) with at least one class, got {describe_shape(z.shape)}"
        )
    with quiet():
        per_sample, grad = _soft_or_hard(z, t, smoothing)
        return reduce_loss(per_sample, grad, reduction, weights, _NAME, class_axis=1)


def _soft_or_hard(logits: Array, t: npt.NDArray[np.generic], label_smoothing: float) -> tuple[Array, Array]:
    """Per-sample losses and their gradient for probability targets or labels, with smoothing."""
    n_classes = logits.shape[1]
    log_p = log_softmax(logits, axis=1)
    p = np.exp(log_p)
    smooth = label_smoothing / n_classes
    if t.shape == logits.shape:
        q = t.astype(logits.dtype, copy=False)
        check_finite_target(t, _NAME, nonnegative=True)
        if not np.isfinite(q).all():
            raise LabelError(_NAME, f"target values do not fit in the logits' dtype {logits.dtype}")
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + smooth
        per_sample: Array = -(q * log_p).sum(axis=1)
        grad: Array = p * q.sum(axis=1, keepdims=True) - q
    elif t.shape == (logits.shape[0], *logits.shape[2:]):
        idx = np.expand_dims(class_labels(t, n_classes, _NAME), 1)
        picked = np.take_along_axis(log_p, idx, axis=1)[:, 0]
        per_sample = -(1.0 - label_smoothing) * picked
        grad = p
        if label_smoothing:
            per_sample -= smooth * log_p.sum(axis=1)
            grad = p - smooth
        # grad is a fresh array (p or p - smooth): subtract (1 - e) at each sample's label in place.
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=1) - (1.0 - label_smoothing), axis=1)
    else:
        raise ShapeError(
            _NAME,
            f"expected labels of shape {describe_shape((logits.shape[0], *logits.shape[2:]))} or "
            f"probabilities of shape {describe_shape(logits.shape)}, got {describe_shape(t.shape)}",
        )
    return per_sample, grad


def _hard_labels(logits: Array, labels: IntArray) -> tuple[Array, Array]:
    """Per-sample losses and their gradient for ``(N, C)`` logits and ``(N,)`` labels: the formula.

    With ``log p = log_softmax(z)`` and ``q = onehot(y)``::

        l = -log p_y          dl/dz = p - onehot(y)

    This is the reference; the loss runs :func:`_hard_labels_fast`, which the tests check against it.
    """
    rows = np.arange(logits.shape[0])
    log_p = log_softmax(logits, axis=1)
    per_sample: Array = -log_p[rows, labels]
    grad: Array = np.exp(log_p)
    grad[rows, labels] -= 1  # grad is our own fresh array
    return per_sample, grad


def _hard_labels_fast(logits: Array, labels: IntArray) -> tuple[Array, Array]:
    """:func:`_hard_labels` arranged for a training step's budget, where this loss is a fifth of the step.

    One ``exp`` (no ``log`` of the whole matrix) and the labels picked by plain integer indexing::

        z = x - max(x)     s = sum_c e^z_c     l = log s - z_y     dl/dz = e^z / s - onehot(y)

    It agrees with :func:`_hard_labels` to rounding (the tests bound the difference by a few ulps of
    the loss and of the gradient's scale).
    """
    rows = np.arange(logits.shape[0])
    z: Array = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    per_sample: Array = np.log(s[:, 0])
    per_sample -= z[rows, labels]
    e /= s  # e is our own: it becomes the softmax, then the gradient
    e[rows, labels] -= 1
    return per_sample, e


#: PyTorch's name for :func:`softmax_cross_entropy`.
cross_entropy = softmax_cross_entropy
