"""Losses: pure ``(pred, target, *, reduction, weights) -> (value, dpred)`` functions.

See :mod:`functional_dl.losses._common` for the contract every loss follows.
"""

from functional_dl.losses._common import LossFn, Reduction
from functional_dl.losses.binary import binary_cross_entropy, sigmoid_binary_cross_entropy
from functional_dl.losses.categorical import cross_entropy, softmax_cross_entropy
from functional_dl.losses.divergence import kl_divergence
from functional_dl.losses.margin import hinge, multiclass_hinge
from functional_dl.losses.regression import huber, mean_absolute_error, mean_squared_error

__all__ = [
    "LossFn",
    "Reduction",
    "binary_cross_entropy",
    "cross_entropy",
    "hinge",
    "huber",
    "kl_divergence",
    "mean_absolute_error",
    "mean_squared_error",
    "multiclass_hinge",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
]
