"""Layer-wise trust ratios, the scaling behind LAMB and LARS.

Each parameter array (a "layer" in the papers) gets its update rescaled so that its size is in
proportion to the size of the parameter itself: large layers take large steps, small ones small.
"""

from __future__ import annotations

import math
from functools import partial

from functional_dl._argcheck import bounded
from functional_dl.optim.base import EmptyState, GradientTransformation, check_state
from functional_dl.optim.transforms import empty_init
from functional_dl.types import Array, Params

__all__ = ["scale_by_trust_ratio"]


def _norm(a: Array) -> float:
    flat = a.ravel()
    return math.sqrt(float(flat @ flat))


def _trust_update(
    updates: Params, state: EmptyState, params: Params, /, *, trust_coefficient: float, eps: float
) -> tuple[Params, EmptyState]:
    check_state("scale_by_trust_ratio", state, EmptyState)
    out: dict[str, Array] = {}
    for k, u in updates.items():
        p_norm, u_norm = _norm(params[k]), _norm(u)
        # A zero norm (fresh zero-initialised bias, or a zero update) leaves the update as it is.
        ratio = trust_coefficient * p_norm / (u_norm + eps) if p_norm > 0.0 and u_norm > 0.0 else 1.0
        out[k] = u * ratio
    return out, state


def scale_by_trust_ratio(
    trust_coefficient: float = 1.0, eps: float = 0.0
) -> GradientTransformation[EmptyState]:
    """Rescale each parameter's update by its trust ratio (You et al., 2017 and 2020).

    Update rule, per parameter array ``p`` with incoming update ``g``::

        u = trust_coefficient * ||p|| / (||g|| + eps) * g      if ||p|| > 0 and ||g|| > 0
        u = g                                                  otherwise

    Raises:
        DomainError: for a negative (or non-finite, or non-numeric) ``trust_coefficient`` or ``eps``.
    """
    where = "scale_by_trust_ratio"
    trust_coefficient = bounded(trust_coefficient, "trust_coefficient", where, 0.0)
    eps = bounded(eps, "eps", where, 0.0)
    return GradientTransformation(
        empty_init, partial(_trust_update, trust_coefficient=float(trust_coefficient), eps=float(eps))
    )
