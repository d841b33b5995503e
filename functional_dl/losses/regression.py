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

from functional_dl.losses._common import (
    Reduction,
    as_prediction,
    as_target,
    check_reduction,
    quiet,
    real_hyperparameter,
    reduce_loss,
)
from functional_dl.types import Array

__all__ = ["huber", "mean_absolute_error", "mean_squared_error"]


def _checked(pred: npt.ArrayLike, target: npt.ArrayLike, reduction: object, name: str) -> tuple[Array, Array]:
    """``(pred, target)`` as arrays of one float dtype and shape, after checking ``reduction``."""
    check_reduction(reduction, name)
    p = as_prediction(pred, name)
    return p, as_target(target, p, name)


def mean_squared_error(
    pred: npt.ArrayLike,
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
    p, t = _checked(pred, target, reduction, "mean_squared_error")
    with quiet():
        d = p - t
        return reduce_loss(d * d, 2 * d, reduction, weights, "mean_squared_error")


def mean_absolute_error(
    pred: npt.ArrayLike,
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
    p, t = _checked(pred, target, reduction, "mean_absolute_error")
    with quiet():
        d = p - t
        return reduce_loss(np.abs(d), np.sign(d), reduction, weights, "mean_absolute_error")


def huber(
    pred: npt.ArrayLike,
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
        delta: where the loss turns from quadratic to linear; positive (``inf`` is half the
            squared error).
        reduction: ``"mean"`` over all elements (default), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``pred``.

    Example:
        >>> import numpy as np
        >>> value, grad = huber(np.array([0.5, 3.0]), np.zeros(2), reduction="none")
        >>> value.tolist(), grad.tolist()
        ([0.125, 2.5], [0.5, 1.0])
    """
    k = real_hyperparameter(delta, "delta", "huber", low=0.0, low_open=True, expected="positive")
    p, t = _checked(pred, target, reduction, "huber")
    with quiet():
        d = p - t
        a = np.abs(d)
        per_element: Array = np.where(a <= k, 0.5 * d * d, k * (a - 0.5 * k))
        return reduce_loss(per_element, np.clip(d, -k, k), reduction, weights, "huber")
