"""Regression losses.

``mean_squared_error``: ``l = (pred - target)^2``, ``dl/dpred = 2 (pred - target)``.
"""

from __future__ import annotations

import numpy.typing as npt

from functional_dl.losses._common import Reduction, as_target, check_pair, reduce_loss
from functional_dl.types import Array

__all__ = ["mean_squared_error"]


def mean_squared_error(
    pred: Array,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Squared error ``(pred - target)^2``, averaged over all elements by default (``nn.MSELoss``).

    Args:
        pred: predictions, any shape with a batch axis.
        target: same shape as ``pred``.
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``pred``.

    Example:
        >>> import numpy as np
        >>> value, grad = mean_squared_error(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
        >>> float(value), grad.tolist()
        (2.5, [1.0, 2.0])
    """
    name = "mean_squared_error"
    check_pair(pred, name)
    diff = pred - as_target(target, pred, name)
    return reduce_loss(diff * diff, 2 * diff, reduction, weights, name)
