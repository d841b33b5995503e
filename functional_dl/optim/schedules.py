"""Schedules: plain functions ``count -> value`` of the number of updates already made.

A schedule is evaluated at ``count = 0`` for the first update, so ``schedule(count)`` is the value
PyTorch's ``lr_scheduler`` reports after ``count`` calls to ``scheduler.step()``. Each factory
returns a picklable ``functools.partial`` of a module-level function. Pass a schedule wherever a
learning rate is accepted (``adam(cosine_decay(1e-3, 1000))``).

Every factory checks its arguments when it is called: values are finite real numbers, step counts
positive ints (``transition_begin`` a non-negative one), flags bools; anything else raises
:class:`~functional_dl.errors.DomainError` naming the schedule, the argument and the value.

Correspondence with ``torch.optim.lr_scheduler`` (``lr`` the base rate)::

    StepLR(step_size, gamma)            exponential_decay(lr, gamma, step_size, staircase=True)
    ExponentialLR(gamma)                exponential_decay(lr, gamma)
    MultiStepLR(milestones, gamma)      piecewise_constant(lr, {m: gamma for m in milestones})
    CosineAnnealingLR(T_max, eta_min)   cosine_decay(lr, T_max, end_value=eta_min)
    CosineAnnealingWarmRestarts(...)    cosine_restarts(lr, T_0, T_mult, end_value=eta_min)
    LinearLR(start, end, total_iters)   linear_schedule(lr * start, lr * end, total_iters)
    OneCycleLR(max_lr, total_steps)     one_cycle(total_steps, max_lr)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial

from functional_dl._argcheck import bounded, flag, one_of, positive_int, real, within
from functional_dl.errors import DomainError
from functional_dl.optim.base import Schedule

__all__ = [
    "constant_schedule",
    "cosine_decay",
    "cosine_restarts",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_schedule",
    "one_cycle",
    "piecewise_constant",
    "polynomial_schedule",
    "sgdr",
    "warmup_constant",
    "warmup_cosine_decay",
]


def _constant(count: int, /, *, value: float) -> float:
    return value


def constant_schedule(value: float) -> Schedule:
    """``v(t) = value``."""
    return partial(_constant, value=real(value, "value", "constant_schedule"))


def _polynomial(count: int, /, *, init: float, end: float, power: float, steps: int, begin: int) -> float:
    done = min(max(count - begin, 0), steps)
    return float((init - end) * (1.0 - done / steps) ** power + end)


def polynomial_schedule(
    init_value: float, end_value: float, power: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """``v(t) = (init - end) * (1 - s / transition_steps)^power + end``, ``s = clip(t - begin, 0, steps)``.

    Example:
        >>> s = polynomial_schedule(1.0, 0.0, 2.0, 4)
        >>> [s(t) for t in range(6)]
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """
    where = "polynomial_schedule"
    return partial(
        _polynomial,
        init=real(init_value, "init_value", where),
        end=real(end_value, "end_value", where),
        power=bounded(power, "power", where, 0.0),
        steps=positive_int(transition_steps, "transition_steps", where),
        begin=positive_int(transition_begin, "transition_begin", where, minimum=0),
    )


def linear_schedule(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """From ``init_value`` to ``end_value`` in a straight line over ``transition_steps`` steps, then flat.

    ``v(t) = init + (end - init) * clip(t - begin, 0, steps) / steps`` (polynomial of power 1).
    """
    with within("linear_schedule"):
        return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin)


def _exponential(
    count: int, /, *, init: float, rate: float, steps: int, staircase: bool, begin: int, end: float | None
) -> float:
    p = max(count - begin, 0) / steps
    if staircase:
        p = math.floor(p)
    v = float(init * rate**p)
    if end is None:
        return v
    return max(v, end) if rate < 1.0 else min(v, end)


def exponential_decay(
    init_value: float,
    decay_rate: float,
    transition_steps: int = 1,
    *,
    staircase: bool = False,
    transition_begin: int = 0,
    end_value: float | None = None,
) -> Schedule:
    """``v(t) = init * decay_rate^((t - begin) / transition_steps)`` (floored exponent if ``staircase``).

    ``end_value`` bounds the value (from below when decaying, from above when growing).

    Example:
        >>> s = exponential_decay(1.0, 0.5, transition_steps=2, staircase=True)
        >>> [s(t) for t in range(5)]
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    where = "exponential_decay"
    return partial(
        _exponential,
        init=real(init_value, "init_value", where),
        rate=bounded(decay_rate, "decay_rate", where, 0.0, open_low=True),
        steps=positive_int(transition_steps, "transition_steps", where),
        staircase=flag(staircase, "staircase", where),
        begin=positive_int(transition_begin, "transition_begin", where, minimum=0),
        end=None if end_value is None else real(end_value, "end_value", where),
    )


def _inverse_time(count: int, /, *, init: float, rate: float) -> float:
    return init / (1.0 + count * rate)


def inverse_time_decay(init_value: float, decay_rate: float) -> Schedule:
    """``v(t) = init / (1 + decay_rate * t)``: ``torch.optim.Adagrad``'s ``lr_decay``."""
    where = "inverse_time_decay"
    return partial(
        _inverse_time,
        init=real(init_value, "init_value", where),
        rate=bounded(decay_rate, "decay_rate", where, 0.0),
    )


def _piecewise(count: int, /, *, init: float, boundaries: tuple[tuple[int, float], ...]) -> float:
    v = init
    for boundary, factor in boundaries:
        if count < boundary:
            break
        v *= factor
    return v


def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    """``v(t) = init * prod of scales[b] over boundaries b <= t`` (PyTorch's ``MultiStepLR``).

    Example:
        >>> s = piecewise_constant(1.0, {2: 0.1, 4: 0.5})
        >>> [round(s(t), 6) for t in range(6)]
        [1.0, 1.0, 0.1, 0.1, 0.05, 0.05]
    """
    where = "piecewise_constant"
    if not isinstance(boundaries_and_scales, Mapping):
        raise DomainError(
            where, f"boundaries_and_scales must map steps to scales, got {boundaries_and_scales!r}"
        )
    pairs = tuple(
        sorted(
            (positive_int(b, "each boundary", where, minimum=0), real(s, "each scale", where))
            for b, s in boundaries_and_scales.items()
        )
    )
    return partial(_piecewise, init=real(init_value, "init_value", where), boundaries=pairs)


def _cosine(count: int, /, *, init: float, steps: int, end: float, exponent: float) -> float:
    frac = min(count, steps) / steps
    return float(end + (init - end) * (0.5 * (1.0 + math.cos(math.pi * frac))) ** exponent)


def cosine_decay(
    init_value: float, decay_steps: int, end_value: float = 0.0, exponent: float = 1.0
) -> Schedule:
    """Half a cosine from ``init_value`` to ``end_value`` over ``decay_steps`` steps, then flat.

    ``v(t) = end + (init - end) * (0.5 * (1 + cos(pi * min(t, T) / T)))^exponent`` with
    ``T = decay_steps`` (SGDR without restarts; PyTorch's ``CosineAnnealingLR`` for ``t <= T``).
    """
    where = "cosine_decay"
    return partial(
        _cosine,
        init=real(init_value, "init_value", where),
        steps=positive_int(decay_steps, "decay_steps", where),
        end=real(end_value, "end_value", where),
        exponent=bounded(exponent, "exponent", where, 0.0),
    )


def _join(count: int, /, *, schedules: tuple[Schedule, ...], boundaries: tuple[int, ...]) -> float:
    start = 0
    index = 0
    for boundary in boundaries:
        if count < boundary:
            break
        start = boundary
        index += 1
    return float(schedules[index](count - start))


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Switch schedules at the boundaries; each new schedule restarts its count at zero.

    ``v(t) = schedules[i](t - boundaries[i - 1])`` where ``i`` is the number of boundaries ``<= t``.
    """
    where = "join_schedules"
    if not isinstance(schedules, Sequence) or not all(callable(s) for s in schedules):
        raise DomainError(where, f"schedules must be a sequence of schedules, got {schedules!r}")
    if not isinstance(boundaries, Sequence):
        raise DomainError(where, f"boundaries must be a sequence of steps, got {boundaries!r}")
    steps = [positive_int(b, "each boundary", where, minimum=0) for b in boundaries]
    if len(schedules) != len(steps) + 1:
        raise DomainError(
            where, f"need one more schedule than boundaries, got {len(schedules)} and {len(steps)}"
        )
    if steps != sorted(steps):
        raise DomainError(where, f"boundaries must be increasing, got {steps}")
    return partial(_join, schedules=tuple(schedules), boundaries=tuple(steps))


def warmup_constant(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant."""
    with within("warmup_constant"):
        return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_cosine_decay(
    init_value: float, peak_value: float, warmup_steps: int, decay_steps: int, end_value: float = 0.0
) -> Schedule:
    """Linear warm-up to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` counts the whole schedule, warm-up included::

        v(t) = init + (peak - init) t / W                                 t < W
        v(t) = end + (peak - end) 0.5 (1 + cos(pi min(t - W, D - W) / (D - W)))   t >= W
    """
    where = "warmup_cosine_decay"
    warmup_steps = positive_int(warmup_steps, "warmup_steps", where)
    decay_steps = positive_int(decay_steps, "decay_steps", where)
    if not warmup_steps < decay_steps:
        raise DomainError(where, f"need 0 < warmup_steps < decay_steps, got {warmup_steps}, {decay_steps}")
    with within(where):
        return join_schedules(
            [
                linear_schedule(init_value, peak_value, warmup_steps),
                cosine_decay(peak_value, decay_steps - warmup_steps, end_value),
            ],
            [warmup_steps],
        )


def _restarts(count: int, /, *, init: float, period: int, mult: int, end: float) -> float:
    if mult == 1:
        t_cur, t_i = count % period, period
    else:
        t_cur, t_i = count, period
        while t_cur >= t_i:  # a handful of iterations: periods grow geometrically
            t_cur -= t_i
            t_i *= mult
    return end + (init - end) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))


def cosine_restarts(
    init_value: float, first_period: int, period_mult: int = 1, end_value: float = 0.0
) -> Schedule:
    """SGDR (Loshchilov and Hutter, 2017): cosine decay that restarts, each period ``period_mult`` longer.

    ``v(t) = end + (init - end) * 0.5 * (1 + cos(pi * T_cur / T_i))`` where ``T_i`` is the length of
    the current period (``first_period * period_mult^i``) and ``T_cur`` the steps since it began.
    PyTorch's ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``.
    """
    where = "cosine_restarts"
    return partial(
        _restarts,
        init=real(init_value, "init_value", where),
        period=positive_int(first_period, "first_period", where),
        mult=positive_int(period_mult, "period_mult", where),
        end=real(end_value, "end_value", where),
    )


#: The name of the paper's method for :func:`cosine_restarts`.
sgdr = cosine_restarts


def _anneal(start: float, end: float, pct: float, cos: bool) -> float:
    if cos:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


def _one_cycle(count: int, /, *, phases: tuple[tuple[float, float, float], ...], cos: bool) -> float:
    start_step = 0.0
    for end_step, start_value, end_value in phases[:-1]:
        if count <= end_step:
            return _anneal(start_value, end_value, (count - start_step) / (end_step - start_step), cos)
        start_step = end_step
    end_step, start_value, end_value = phases[-1]  # the last phase also takes any step past the end
    return _anneal(start_value, end_value, (count - start_step) / (end_step - start_step), cos)


def one_cycle(
    total_steps: int,
    max_value: float,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """The 1cycle policy (Smith and Topin, 2019), exactly as PyTorch's ``OneCycleLR`` computes it.

    The value rises from ``max / div_factor`` to ``max`` over the first ``pct_start`` of the steps,
    then falls to ``max / (div_factor * final_div_factor)`` (with ``three_phase``, first back to
    the initial value, symmetrically, then to the minimum). Each phase anneals with a half cosine
    (``anneal_strategy="cos"``) or a straight line (``"linear"``).
    """
    where = "one_cycle"
    total_steps = positive_int(total_steps, "total_steps", where)
    max_value = real(max_value, "max_value", where)
    pct_start = bounded(pct_start, "pct_start", where, 0.0, 1.0, open_low=True, open_high=True)
    div_factor = bounded(div_factor, "div_factor", where, 0.0, open_low=True)
    final_div_factor = bounded(final_div_factor, "final_div_factor", where, 0.0, open_low=True)
    one_of(anneal_strategy, "anneal_strategy", where, ("cos", "linear"))
    three_phase = flag(three_phase, "three_phase", where)
    initial = max_value / div_factor
    minimum = initial / final_div_factor
    rise = float(pct_start * total_steps) - 1.0
    phases: tuple[tuple[float, float, float], ...]
    if three_phase:
        phases = (
            (rise, initial, max_value),
            (float(2 * pct_start * total_steps) - 2.0, max_value, initial),
            (total_steps - 1.0, initial, minimum),
        )
    else:
        phases = ((rise, initial, max_value), (total_steps - 1.0, max_value, minimum))
    return partial(_one_cycle, phases=phases, cos=anneal_strategy == "cos")
