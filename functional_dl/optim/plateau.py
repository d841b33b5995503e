"""Reduce-on-plateau: shrink the step when a watched loss stops improving.

As with PyTorch's ``ReduceLROnPlateau``, the loss is reported separately from the gradient step,
usually once per epoch on validation data::

    opt = optimizer(chain(scale_by_adam(), scale_by_learning_rate(1e-3), reduce_on_plateau(patience=5)))
    state = opt.init(params)
    ...                                          # steps: state, params = opt.update(state, grads)
    state = observe_loss(state, val_loss)        # once per epoch

The transformation multiplies updates by ``scale`` (1 at the start). :func:`observe_loss` finds every
:class:`ReduceOnPlateauState` in an optimizer state and applies PyTorch's rule to it. The settings
are kept in the state (as numbers) so that ``observe_loss`` needs nothing but the state.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple, TypeVar

import numpy as np

from functional_dl._argcheck import bounded, one_of, positive_int
from functional_dl.errors import DomainError
from functional_dl.optim.base import GradientTransformation, check_state
from functional_dl.optim.state_tree import replace_states
from functional_dl.types import Params

__all__ = ["PlateauConfig", "ReduceOnPlateauState", "observe_loss", "reduce_on_plateau"]

S = TypeVar("S")


class PlateauConfig(NamedTuple):
    """Settings of :func:`reduce_on_plateau` (see there)."""

    factor: float
    patience: int
    threshold: float
    cooldown: int
    min_scale: float
    relative: bool
    maximize: bool
    eps: float


class ReduceOnPlateauState(NamedTuple):
    """What reduce-on-plateau has seen so far.

    Attributes:
        scale: the factor applied to updates now.
        best: the best loss seen (``inf`` before the first, ``-inf`` when maximising).
        num_bad: losses seen since the last improvement (reset after each reduction).
        cooldown_counter: observations left before bad losses count again.
        config: the settings.
    """

    scale: float
    best: float
    num_bad: int
    cooldown_counter: int
    config: PlateauConfig


def _plateau_init(config: PlateauConfig, params: Params, /) -> ReduceOnPlateauState:
    return ReduceOnPlateauState(1.0, -math.inf if config.maximize else math.inf, 0, 0, config)


def _plateau_update(
    updates: Params, state: ReduceOnPlateauState, params: Params, /
) -> tuple[Params, ReduceOnPlateauState]:
    check_state("reduce_on_plateau", state, ReduceOnPlateauState)
    s = state.scale
    if s == 1.0:
        return updates, state
    return {k: g * s for k, g in updates.items()}, state


def reduce_on_plateau(
    factor: float = 0.1,
    *,
    patience: int = 10,
    threshold: float = 1e-4,
    cooldown: int = 0,
    min_scale: float = 0.0,
    threshold_mode: str = "rel",
    mode: str = "min",
    eps: float = 1e-8,
) -> GradientTransformation[ReduceOnPlateauState]:
    """Multiply updates by a scale that shrinks by ``factor`` when the observed loss plateaus.

    Update rule: ``u = scale * g``. On each :func:`observe_loss` with value ``x`` (mode ``"min"``):
    ``x`` improves if ``x < best * (1 - threshold)`` (``threshold_mode="rel"``) or
    ``x < best - threshold`` (``"abs"``). After more than ``patience`` observations without
    improvement, ``scale <- max(scale * factor, min_scale)``, then ``cooldown`` observations are
    ignored. A reduction smaller than ``eps`` is not made. This is
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` with ``lr = base_lr * scale`` (PyTorch
    compares ``eps`` with the change of the learning rate, here of the scale).

    Raises:
        DomainError: for a ``factor`` outside ``(0, 1)``, a negative or non-int ``patience`` or
            ``cooldown``, a negative or non-finite ``threshold``, ``min_scale`` or ``eps``, or an
            unknown ``threshold_mode`` or ``mode``.
    """
    where = "reduce_on_plateau"
    config = PlateauConfig(
        bounded(factor, "factor", where, 0.0, 1.0, open_low=True, open_high=True),
        positive_int(patience, "patience", where, minimum=0),
        bounded(threshold, "threshold", where, 0.0),
        positive_int(cooldown, "cooldown", where, minimum=0),
        bounded(min_scale, "min_scale", where, 0.0),
        one_of(threshold_mode, "threshold_mode", where, ("rel", "abs")) == "rel",
        one_of(mode, "mode", where, ("min", "max")) == "max",
        bounded(eps, "eps", where, 0.0),
    )
    return GradientTransformation(partial(_plateau_init, config), _plateau_update, elementwise=True)


def _improves(x: float, best: float, c: PlateauConfig) -> bool:
    if c.maximize:
        return x > (best * (1.0 + c.threshold) if c.relative else best + c.threshold)
    return x < (best * (1.0 - c.threshold) if c.relative else best - c.threshold)


def _observe(value: float, s: ReduceOnPlateauState) -> ReduceOnPlateauState:
    c = s.config
    best, num_bad, cooldown, scale = s.best, s.num_bad + 1, s.cooldown_counter, s.scale
    if _improves(value, best, c):
        best, num_bad = value, 0
    if cooldown > 0:
        cooldown, num_bad = cooldown - 1, 0
    if num_bad > c.patience:
        reduced = max(scale * c.factor, c.min_scale)
        if scale - reduced > c.eps:
            scale = reduced
        cooldown, num_bad = c.cooldown, 0
    return ReduceOnPlateauState(scale, best, num_bad, cooldown, c)


def observe_loss(state: S, value: float) -> S:
    """A new optimizer state in which every reduce-on-plateau has seen the loss ``value``.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim import optimizer, scale_by_learning_rate, chain
        >>> opt = optimizer(chain(scale_by_learning_rate(1.0), reduce_on_plateau(patience=1)))
        >>> state = opt.init({"w": np.zeros(1)})
        >>> for loss in [3.0, 3.0, 3.0]:
        ...     state = observe_loss(state, loss)
        >>> state.inner[1].scale
        0.1

    Raises:
        DomainError: when ``value`` is not a real number, or is NaN.
    """
    given: object = value  # typed float, but a 0-d array or a NumPy scalar is a fine loss too
    scalar = isinstance(given, np.ndarray) and given.ndim == 0 and given.dtype.kind in "iuf"
    if isinstance(given, bool) or not (scalar or isinstance(given, int | float | np.integer | np.floating)):
        raise DomainError("observe_loss", f"the loss must be a real number, got {value!r}")
    x = float(value)
    if math.isnan(x):
        raise DomainError("observe_loss", "the loss is NaN")
    return replace_states(state, ReduceOnPlateauState, partial(_observe, x))
