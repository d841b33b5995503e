"""Optimizers as chains of small pure gradient transformations (see :mod:`.base`)."""

from functional_dl.optim.aliases import sgd
from functional_dl.optim.base import (
    EmptyState,
    GradientTransformation,
    Optimizer,
    OptimizerState,
    Schedule,
    apply_updates,
    optimizer,
)
from functional_dl.optim.transforms import chain, scale, scale_by_learning_rate, scale_by_schedule

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "Optimizer",
    "OptimizerState",
    "Schedule",
    "apply_updates",
    "chain",
    "optimizer",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "sgd",
]
