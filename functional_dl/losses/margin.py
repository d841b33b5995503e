"""Hinge (margin) losses: binary with labels in {-1, +1}, and multi-class as ``nn.MultiMarginLoss``.

Binary, with score ``x`` and label ``y`` in ``{-1, +1}``::

    l = max(0, 1 - y x)                    dl/dx = -y [1 - y x > 0]

Multi-class (Crammer-Singer style as PyTorch defines it, ``p = 1``), with scores ``x`` ``(N, C)``,
label ``y`` and margin ``m``::

    l = sum_{j != y} max(0, m - x_y + x_j) / C
    dl/dx_j = [m - x_y + x_j > 0] / C  (j != y)        dl/dx_y = -sum_{j != y} [m - x_y + x_j > 0] / C

At the hinge itself (``y x = 1``) the gradient is taken as 0. A NaN score gives a NaN loss and
gradient (``max(0, NaN)`` is NaN), never a silent 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl._arraylike import as_numeric
from functional_dl.errors import LabelError, ShapeError, describe_shape
from functional_dl.losses._common import (
    Reduction,
    as_prediction,
    as_target,
    check_reduction,
    quiet,
    real_hyperparameter,
    reduce_loss,
)
from functional_dl.losses.categorical import class_labels
from functional_dl.types import Array

__all__ = ["hinge", "multiclass_hinge"]


def hinge(
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Binary hinge loss ``max(0, 1 - target * pred)`` for labels in ``{-1, +1}`` (a linear SVM's).

    Args:
        pred: scores, any shape with a batch axis (``(N, 1)`` for one binary output).
        target: same shape, every value ``-1`` or ``+1``.
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``pred``.

    Raises:
        LabelError: a target other than -1 or +1 (0/1 labels map to -1/+1 as ``2 y - 1``).

    Example:
        >>> import numpy as np
        >>> value, grad = hinge(np.array([2.0, 0.5, -1.0]), np.array([1, 1, 1]), reduction="none")
        >>> value.tolist(), grad.tolist()
        ([0.0, 0.5, 2.0], [-0.0, -1.0, -1.0])
    """
    name = "hinge"
    check_reduction(reduction, name)
    x = as_prediction(pred, name)
    y = as_target(target, x, name)
    if not np.isin(y, (-1.0, 1.0)).all():
        raise LabelError(name, "targets must be -1 or +1 (map 0/1 labels with 2 * y - 1)")
    with quiet():
        margin = 1.0 - y * x
        # heaviside(m, 0) is [m > 0] but NaN at a NaN margin, so a NaN score shows in the gradient too.
        return reduce_loss(np.maximum(margin, 0), -y * np.heaviside(margin, 0), reduction, weights, name)


def multiclass_hinge(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    margin: float = 1.0,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Multi-class hinge loss, ``torch.nn.MultiMarginLoss(p=1, margin=margin)``.

    Args:
        logits: ``(N, C)`` scores.
        labels: ``(N,)`` integer class labels in ``[0, C)``.
        margin: the margin ``m`` by which the true class should win: a finite real number.
        reduction: ``"mean"`` over samples (default), ``"sum"`` or ``"none"`` (one loss per sample).
        weights: optional per-sample multipliers broadcastable to ``(N,)``.
    """
    name = "multiclass_hinge"
    check_reduction(reduction, name)
    m = real_hyperparameter(margin, "margin", name, finite=True)
    z = as_prediction(logits, name)
    t = as_numeric(labels, "labels", name, error=LabelError)
    if z.ndim != 2 or t.shape != z.shape[:1]:
        raise ShapeError(
            name,
            f"expected logits (N, C) and labels (N,), got {describe_shape(z.shape)} and "
            f"{describe_shape(t.shape)}",
        )
    if not z.shape[1]:
        raise ShapeError(
            name, f"expected logits (N, C) with at least one class, got {describe_shape(z.shape)}"
        )
    n_classes = z.shape[1]
    idx = class_labels(t, n_classes, name)[:, None]
    with quiet():
        true_score = np.take_along_axis(z, idx, axis=1)
        slack = m - true_score + z
        # [slack > 0] as a float, NaN where a score is NaN (so the loss and gradient show it).
        active = np.heaviside(slack, 0)
        np.put_along_axis(active, idx, 0, axis=1)  # the true class is not its own rival
        per_sample: Array = (np.maximum(slack, 0) * active).sum(axis=1) / z.dtype.type(n_classes)
        grad: Array = active / z.dtype.type(n_classes)
        np.put_along_axis(grad, idx, -active.sum(axis=1, keepdims=True) / z.dtype.type(n_classes), axis=1)
        return reduce_loss(per_sample, grad, reduction, weights, name, class_axis=1)
