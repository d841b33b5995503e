"""Kullback-Leibler divergence, with PyTorch's conventions (``torch.nn.functional.kl_div``).

The prediction is a *log*-probability ``x = log q`` (the output of ``log_softmax``), the target a
probability ``p`` (or a log-probability when ``log_target=True``). Elementwise::

    l = p (log p - x)          dl/dx = -p             (l = 0 where p = 0)
    l = e^t (t - x)            dl/dx = -e^t           (log_target: t = log p; l = 0 where t = -inf)

so ``sum_c l_c = KL(p || q)`` for each sample. We chose PyTorch's argument order and log-input
convention so that code and checkpoints move across unchanged. As in PyTorch, ``"mean"`` averages
over *all elements*, which is ``KL / C``, not the KL divergence per sample; ``"batchmean"`` is the
mean KL divergence per sample, ``sum(l) / N`` with ``N = log_pred.shape[0]`` (and the gradient
``-p / N``), which is what the mathematics means and what PyTorch recommends.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from functional_dl.errors import DomainError, LabelError
from functional_dl.losses._common import (
    REDUCTIONS,
    Reduction,
    as_prediction,
    as_target,
    check_finite_target,
    check_reduction,
    quiet,
    reduce_loss,
)
from functional_dl.types import Array

KLReduction = Reduction | Literal["batchmean"]

__all__ = ["KLReduction", "kl_divergence"]

_NAME = "kl_divergence"
_KL_REDUCTIONS = (*REDUCTIONS, "batchmean")


def kl_divergence(
    log_pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    log_target: bool = False,
    reduction: KLReduction = "mean",
    weights: npt.ArrayLike | None = None,
) -> tuple[Array, Array]:
    """``KL(target || exp(log_pred))`` elementwise, as ``F.kl_div(log_pred, target)``.

    Args:
        log_pred: log-probabilities ``(N, C, ...)``, e.g. from ``log_softmax``.
        target: probabilities of the same shape (``>= 0``), or log-probabilities if ``log_target``.
        log_target: whether ``target`` is given as log-probabilities.
        reduction: ``"mean"`` over all elements (default), ``"batchmean"`` (the sum over the
            batch size ``N``: the KL divergence per sample), ``"sum"`` or ``"none"``.
        weights: optional per-element multipliers broadcastable to ``log_pred``.

    Raises:
        ShapeError: ``target`` does not have the shape of ``log_pred``.
        LabelError: ``target`` holds NaN (or infinity, or a negative probability).

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.5, 0.5, 0.0]])
        >>> value, grad = kl_divergence(np.log(np.array([[0.25, 0.5, 0.25]])), p, reduction="sum")
        >>> round(float(value), 6), grad.tolist()          # 0.5 log 2 = 0.346574
        (0.346574, [[-0.5, -0.5, -0.0]])
        >>> two = np.log(np.array([[0.25, 0.5, 0.25]] * 2))
        >>> value, grad = kl_divergence(two, np.array([[0.5, 0.5, 0.0]] * 2), reduction="batchmean")
        >>> round(float(value), 6), grad[0].tolist()       # the same KL per sample, over N = 2
        (0.346574, [-0.25, -0.25, -0.0])
    """
    check_reduction(reduction, _NAME, _KL_REDUCTIONS)
    if not isinstance(log_target, bool | np.bool_):
        raise DomainError(_NAME, f"log_target must be a bool, got {type(log_target).__name__} {log_target!r}")
    x = as_prediction(log_pred, _NAME)
    t = as_target(target, x, _NAME, finite=not log_target)
    with quiet():
        if log_target:
            if np.isnan(t).any() or np.isposinf(t).any():
                raise LabelError(_NAME, "log-target contains NaN or +infinity")
            p = np.exp(t)
            # A log-target of -inf is a zero probability, whose term is 0 (e^t (t - x) would be 0 * -inf).
            per_element: Array = np.where(p > 0, p * (t - x), 0.0)
        else:
            check_finite_target(t, _NAME, nonnegative=True)
            p = t
            positive = p > 0
            # p log p with the convention 0 log 0 = 0 (torch's xlogy); log of the zeros is never taken.
            log_p = np.log(np.where(positive, p, 1.0))
            per_element = p * np.where(positive, log_p - x, 0.0)
        if reduction == "batchmean":
            total, grad = reduce_loss(per_element, -p, "sum", weights, _NAME)
            n = x.dtype.type(x.shape[0])
            batch_grad: Array = grad / n
            return np.asarray(total / n, dtype=x.dtype), batch_grad
        return reduce_loss(per_element, -p, reduction, weights, _NAME)
