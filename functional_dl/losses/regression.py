"""Regression losses, on ``d = pred - target`` elementwise (PyTorch's ``MSELoss``, ``L1Loss``, ``HuberLoss``).

::

    mean_squared_error   l = d^2                                        dl/dpred = 2 d
    mean_absolute_error  l = |d|                                        dl/dpred = sign(d)   (0 at d = 0)
    huber(delta)         l = d^2 / 2            if |d| <= delta          dl/dpred = clip(d, -delta, delta)
                           = delta (|d| - delta / 2)  otherwise

Huber is quadratic near 0 and linear beyond ``delta``, so large residuals pull with a bounded
force; with ``delta = 1`` it equals PyTorch's ``SmoothL1Loss``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl.losses._common import Reduction, as_target, check_pair, reduce_loss
from functional_dl.types import Array

__all__ = ["huber", "mean_absolute_error", "mean_squared_error"]


def _residual(pred: Array, target: npt.ArrayLike, name: str) -> Array:
    check_pair(pred, name)
    d: Array = pred - as_target(target, pred, name)
    return d


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
    d = _residual(pred, target, "mean_squared_error")
    return reduce_loss(d * d, 2 * d, reduction, weights, "mean_squared_error")


def mean_absolute_error(
    pred: Array,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Absolute error ``|pred - target|`` (``nn.L1Loss``); the gradient at a zero residual is 0.

    Args:
        pred: predictions, any shape with a batch axis.
        target: same shape as ``pred``.
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``pred``.
    """
    d = _residual(pred, target, "mean_absolute_error")
    return reduce_loss(np.abs(d), np.sign(d), reduction, weights, "mean_absolute_error")


def huber(
    pred: Array,
    target: npt.ArrayLike,
    *,
    delta: float = 1.0,
    reduction: Reduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Huber loss with threshold ``delta`` (``nn.HuberLoss(delta=delta)``).

    Args:
        pred: predictions, any shape with a batch axis.
        target: same shape as ``pred``.
        delta: where the loss turns from quadratic to linear; positive.
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``pred``.

    Example:
        >>> import numpy as np
        >>> value, grad = huber(np.array([0.5, 3.0]), np.zeros(2), reduction="none")
        >>> value.tolist(), grad.tolist()
        ([0.125, 2.5], [0.5, 1.0])
    """
    if not delta > 0:
        raise ValueError(f"huber: delta must be positive, got {delta!r}")
    d = _residual(pred, target, "huber")
    a = np.abs(d)
    per_element: Array = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return reduce_loss(per_element, np.clip(d, -delta, delta), reduction, weights, "huber")
