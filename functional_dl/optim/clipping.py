"""Clipping: bound updates by value, by the norm of all of them together, or per parameter array."""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from functional_dl._argcheck import bounded
from functional_dl.optim.base import EmptyState, GradientTransformation, check_state
from functional_dl.optim.transforms import empty_init
from functional_dl.params import global_norm
from functional_dl.types import Array, Params

__all__ = ["clip", "clip_by_block_norm", "clip_by_global_norm"]


def _clip_update(
    updates: Params, state: EmptyState, params: Params, /, *, max_delta: float
) -> tuple[Params, EmptyState]:
    check_state("clip", state, EmptyState)
    return {k: np.clip(g, -max_delta, max_delta) for k, g in updates.items()}, state


def clip(max_delta: float) -> GradientTransformation[EmptyState]:
    """Clip every coordinate to ``[-max_delta, max_delta]``.

    Update rule: ``u = min(max(g, -max_delta), max_delta)``.

    Like ``torch.nn.utils.clip_grad_value_``.

    Raises:
        DomainError: when ``max_delta`` is not a finite real number > 0.
    """
    max_delta = bounded(max_delta, "max_delta", "clip", 0.0, open_low=True)
    return GradientTransformation(
        empty_init, partial(_clip_update, max_delta=float(max_delta)), elementwise=True
    )


def _clip_factor(norm: float, max_norm: float, eps: float) -> float:
    return min(1.0, max_norm / (norm + eps))


def _global_update(
    updates: Params, state: EmptyState, params: Params, /, *, max_norm: float, eps: float
) -> tuple[Params, EmptyState]:
    check_state("clip_by_global_norm", state, EmptyState)
    factor = _clip_factor(global_norm(updates), max_norm, eps)
    if factor >= 1.0:
        return updates, state  # not modified, so sharing is safe
    return {k: g * factor for k, g in updates.items()}, state


def clip_by_global_norm(max_norm: float, eps: float = 1e-6) -> GradientTransformation[EmptyState]:
    """Rescale all updates together so that their joint L2 norm is at most ``max_norm``.

    Update rule, as ``torch.nn.utils.clip_grad_norm_`` defines it::

        n = sqrt(sum_k ||g_k||^2)
        u_k = g_k * min(1, max_norm / (n + eps))

    Raises:
        DomainError: when ``max_norm`` is not a finite real number > 0, or ``eps`` one >= 0.
    """
    max_norm = bounded(max_norm, "max_norm", "clip_by_global_norm", 0.0, open_low=True)
    eps = bounded(eps, "eps", "clip_by_global_norm", 0.0)
    return GradientTransformation(
        empty_init, partial(_global_update, max_norm=float(max_norm), eps=float(eps))
    )


def _block_update(
    updates: Params, state: EmptyState, params: Params, /, *, max_norm: float, eps: float
) -> tuple[Params, EmptyState]:
    check_state("clip_by_block_norm", state, EmptyState)
    out: dict[str, Array] = {}
    for k, g in updates.items():
        flat = g.ravel()
        factor = _clip_factor(math.sqrt(float(flat @ flat)), max_norm, eps)
        out[k] = g if factor >= 1.0 else g * factor
    return out, state


def clip_by_block_norm(max_norm: float, eps: float = 1e-6) -> GradientTransformation[EmptyState]:
    """Rescale each parameter's update on its own so that its L2 norm is at most ``max_norm``.

    Update rule: ``u_k = g_k * min(1, max_norm / (||g_k|| + eps))`` for every key ``k``.

    Raises:
        DomainError: when ``max_norm`` is not a finite real number > 0, or ``eps`` one >= 0.
    """
    max_norm = bounded(max_norm, "max_norm", "clip_by_block_norm", 0.0, open_low=True)
    eps = bounded(eps, "eps", "clip_by_block_norm", 0.0)
    return GradientTransformation(
        empty_init, partial(_block_update, max_norm=float(max_norm), eps=float(eps))
    )
