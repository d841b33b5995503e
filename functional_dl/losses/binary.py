"""Binary (and multi-label) cross-entropy, from logits and from probabilities.

With ``z`` the logits, ``p`` probabilities and ``y`` in ``[0, 1]`` the targets:

``sigmoid_binary_cross_entropy``::

    l = max(z, 0) - z y + log(1 + e^-|z|)          dl/dz = s(z) - y

which equals ``-(y log s(z) + (1-y) log(1 - s(z)))`` but never exponentiates a positive number,
so it is finite (and its gradient exact) for logits of any magnitude, ±1e4 included.

``binary_cross_entropy`` (on probabilities, as ``torch.nn.BCELoss``)::

    l = -(y max(log p, -100) + (1-y) max(log(1-p), -100))
    dl/dp = (p - y) / max(p (1 - p), 1e-12)

The clamps are PyTorch's: each log term is at least -100 and the gradient's denominator at least
1e-12, so ``p`` of exactly 0 or 1 gives a large but finite loss. Prefer the logits form.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl._math import sigmoid
from functional_dl.errors import DomainError, LabelError
from functional_dl.losses._common import (
    Reduction,
    as_prediction,
    as_target,
    check_reduction,
    quiet,
    reduce_loss,
)
from functional_dl.types import Array

__all__ = ["binary_cross_entropy", "sigmoid_binary_cross_entropy"]

_LOG_FLOOR = -100.0
_GRAD_EPS = 1e-12


def _check_unit_interval(a: Array, what: str, loss: str) -> None:
    # NaN compares False both ways: a NaN target never gets here, a NaN probability goes through.
    if a.size and (a.min() < 0 or a.max() > 1):
        error = LabelError if what == "target" else DomainError
        raise error(loss, f"{what} values must lie in [0, 1], got range [{a.min()}, {a.max()}]")


def sigmoid_binary_cross_entropy(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``target``, computed from the logits.

    Args:
        logits: ``(batch, k)`` raw scores (``k = 1`` for a binary classifier, ``k`` labels for
            multi-label classification).
        target: same shape as ``logits``, values in ``[0, 1]`` (0/1 labels or soft targets).
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``logits``.

    Returns:
        ``(value, dlogits)``; see :mod:`functional_dl.losses` for the contract.

    Raises:
        ShapeError: ``target`` does not have the shape of ``logits``.
        LabelError: ``target`` holds NaN or values outside ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> value, grad = sigmoid_binary_cross_entropy(np.array([[1e4], [-1e4]]), np.array([[0], [0]]))
        >>> float(value), grad.ravel().tolist()
        (5000.0, [0.5, 0.0])
    """
    name = "sigmoid_binary_cross_entropy"
    check_reduction(reduction, name)
    z = as_prediction(logits, name)
    y = as_target(target, z, name)
    _check_unit_interval(y, "target", name)
    with quiet():
        per_element: Array = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        grad: Array = sigmoid(z) - y
        return reduce_loss(per_element, grad, reduction, weights, name)


def binary_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Binary cross-entropy on probabilities (``torch.nn.BCELoss``), with PyTorch's clamping.

    Args:
        probs: ``(batch, k)`` probabilities in ``[0, 1]``.
        target: same shape, values in ``[0, 1]``.
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``probs``.

    Raises:
        ShapeError: ``target`` does not have the shape of ``probs``.
        LabelError: ``target`` holds NaN or values outside ``[0, 1]``.
        DomainError: ``probs`` holds values outside ``[0, 1]``.
    """
    name = "binary_cross_entropy"
    check_reduction(reduction, name)
    p = as_prediction(probs, name)
    y = as_target(target, p, name)
    _check_unit_interval(y, "target", name)
    _check_unit_interval(p, "prediction", name)
    with quiet(), np.errstate(divide="ignore"):  # log(0) = -inf is clamped to -100 just below
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
        log_1mp = np.maximum(np.log1p(-p), _LOG_FLOOR)
        per_element: Array = -(y * log_p + (1 - y) * log_1mp)
        grad: Array = (p - y) / np.maximum(p * (1 - p), p.dtype.type(_GRAD_EPS))
        return reduce_loss(per_element, grad, reduction, weights, name)
