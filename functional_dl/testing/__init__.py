"""Helpers for testing layers, losses and optimizers, ours and the user's.

``check_gradients`` and ``check_purity`` need only NumPy. Hypothesis strategies live in
:mod:`functional_dl.testing.strategies`, imported explicitly because they need ``hypothesis``.
"""

from functional_dl.testing.gradcheck import (
    GradientReport,
    check_gradients,
    check_loss_gradients,
    numerical_gradient,
)
from functional_dl.testing.purity import assert_bitwise_equal, check_purity, snapshot

__all__ = [
    "GradientReport",
    "assert_bitwise_equal",
    "check_gradients",
    "check_loss_gradients",
    "check_purity",
    "numerical_gradient",
    "snapshot",
]
