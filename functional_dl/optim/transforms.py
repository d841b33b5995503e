"""Gradient transformations: small pure maps from updates to updates, each with its own state.

Each factory returns a :class:`~functional_dl.optim.base.GradientTransformation`. Update rules are
written with ``g`` the incoming update (the gradient at the start of a chain), ``u`` the outgoing
update, ``t`` the 1-based step and ``lr`` the learning rate.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from functional_dl.optim.base import EmptyState, GradientTransformation, Schedule
from functional_dl.types import Params

__all__ = ["ScaleByScheduleState", "chain", "scale", "scale_by_learning_rate", "scale_by_schedule"]


def _empty_init(params: Params, /) -> EmptyState:
    return EmptyState()


def _scale_update(
    updates: Params, state: EmptyState, params: Params, /, *, factor: float
) -> tuple[Params, EmptyState]:
    return {k: g * factor for k, g in updates.items()}, state


def scale(factor: float) -> GradientTransformation[EmptyState]:
    """``u = factor * g``."""
    return GradientTransformation(_empty_init, partial(_scale_update, factor=float(factor)))


class ScaleByScheduleState(NamedTuple):
    """Steps taken so far, at which the schedule is evaluated at."""

    step: int


def _schedule_init(params: Params, /) -> ScaleByScheduleState:
    return ScaleByScheduleState(0)


def _schedule_update(
    updates: Params, state: ScaleByScheduleState, params: Params, /, *, schedule: Schedule, sign: float
) -> tuple[Params, ScaleByScheduleState]:
    factor = sign * float(schedule(state.step))
    return {k: g * factor for k, g in updates.items()}, ScaleByScheduleState(state.step + 1)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation[ScaleByScheduleState]:
    """``u_t = schedule(t - 1) * g_t``: the schedule is evaluated at the number of earlier steps."""
    return GradientTransformation(_schedule_init, partial(_schedule_update, schedule=schedule, sign=1.0))


def scale_by_learning_rate(
    learning_rate: float | Schedule,
) -> GradientTransformation[EmptyState] | GradientTransformation[ScaleByScheduleState]:
    """``u = -lr * g``: the descent step. ``learning_rate`` is a number or a schedule of the step."""
    if callable(learning_rate):
        return GradientTransformation(
            _schedule_init, partial(_schedule_update, schedule=learning_rate, sign=-1.0)
        )
    return scale(-float(learning_rate))


def _chain_init(transforms: tuple[GradientTransformation[Any], ...], params: Params, /) -> tuple[object, ...]:
    return tuple(t.init(params) for t in transforms)


def _chain_update(
    transforms: tuple[GradientTransformation[Any], ...],
    updates: Params,
    state: tuple[object, ...],
    params: Params,
    /,
) -> tuple[Params, tuple[object, ...]]:
    if len(state) != len(transforms):
        raise ValueError(f"chain: state has {len(state)} entries, the chain has {len(transforms)} transforms")
    new_state = []
    for transform, inner in zip(transforms, state, strict=True):
        updates, new_inner = transform.update(updates, inner, params)
        new_state.append(new_inner)
    return updates, tuple(new_state)


def chain(*transforms: GradientTransformation[Any]) -> GradientTransformation[tuple[object, ...]]:
    """Apply transformations in order; the state is the tuple of their states.

    Example:
        >>> import numpy as np
        >>> t = chain(scale(2.0), scale(-0.5))
        >>> updates, _ = t.update({"w": np.array([3.0])}, t.init({}), {})
        >>> updates["w"]
        array([-3.])
    """
    return GradientTransformation(partial(_chain_init, transforms), partial(_chain_update, transforms))
