"""Named optimizers. Each is a :func:`~functional_dl.optim.transforms.chain` and nothing more."""

from __future__ import annotations

from functional_dl.optim.base import Optimizer, Schedule, optimizer
from functional_dl.optim.transforms import chain, scale_by_learning_rate

__all__ = ["sgd"]


def sgd(learning_rate: float | Schedule) -> Optimizer[tuple[object, ...]]:
    """Plain gradient descent.

    Update rule: ``p_t = p_{t-1} - lr_t * g_t``.

    Args:
        learning_rate: a number, or a schedule ``step -> lr``.
    """
    return optimizer(chain(scale_by_learning_rate(learning_rate)))
