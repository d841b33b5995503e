"""Lion: the sign of an interpolated momentum.

Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms".
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import numpy as np

from functional_dl._argcheck import bounded
from functional_dl.optim.base import GradientTransformation, check_slots, check_state
from functional_dl.types import Array, Params

__all__ = ["ScaleByLionState", "scale_by_lion"]


class ScaleByLionState(NamedTuple):
    """Lion's momentum ``m`` (keys and shapes of the params)."""

    mu: Mapping[str, Array]


def _lion_init(params: Params, /) -> ScaleByLionState:
    return ScaleByLionState({k: np.zeros_like(p) for k, p in params.items()})


def _lion_update(
    updates: Params, state: ScaleByLionState, params: Params, /, *, b1: float, b2: float
) -> tuple[Params, ScaleByLionState]:
    check_state("scale_by_lion", state, ScaleByLionState)
    check_slots("scale_by_lion", "mu", state.mu, updates)
    mu: dict[str, Array] = {}
    out: dict[str, Array] = {}
    for k, g in updates.items():
        m = state.mu[k]
        c = m * b1
        c += g * (1.0 - b1)
        out[k] = np.sign(c, out=c)
        new = m * b2
        new += g * (1.0 - b2)
        mu[k] = new
    return out, ScaleByLionState(mu)


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation[ScaleByLionState]:
    """Lion's scaling: the sign of an interpolation between momentum and gradient.

    Update rule (``m_0 = 0``)::

        u_t = sign(b1 m_{t-1} + (1 - b1) g_t)
        m_t = b2 m_{t-1} + (1 - b2) g_t

    Raises:
        DomainError: for ``b1`` or ``b2`` outside ``[0, 1]`` or not a finite real number.
    """
    where = "scale_by_lion"
    b1 = bounded(b1, "b1", where, 0.0, 1.0)
    b2 = bounded(b2, "b2", where, 0.0, 1.0)
    return GradientTransformation(
        _lion_init, partial(_lion_update, b1=float(b1), b2=float(b2)), elementwise=True
    )
