"""Losses: pure ``(pred, target, *, reduction, weights) -> (value, dpred)`` functions.

See :mod:`functional_dl.losses._common` for the contract every loss follows.
"""

from functional_dl.losses._common import LossFn, Reduction
from functional_dl.losses.binary import binary_cross_entropy, sigmoid_binary_cross_entropy
from functional_dl.losses.regression import mean_squared_error

__all__ = [
    "LossFn",
    "Reduction",
    "binary_cross_entropy",
    "mean_squared_error",
    "sigmoid_binary_cross_entropy",
]
