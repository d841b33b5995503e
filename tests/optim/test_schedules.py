"""Schedules agree with ``torch.optim.lr_scheduler`` step by step, and with their formulas otherwise."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O

BASE = 0.1


def _torch_lrs(make: Callable[[Any], Any], steps: int) -> list[float]:
    """The learning rate PyTorch applies at each of ``steps`` optimizer steps."""
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=BASE)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _torch_cases() -> list[tuple[str, Any, Callable[[Any], Any], int]]:
    torch = pytest.importorskip("torch")
    S = torch.optim.lr_scheduler
    return [
        (
            "steplr",
            O.exponential_decay(BASE, 0.5, 7, staircase=True),
            lambda o: S.StepLR(o, 7, gamma=0.5),
            40,
        ),
        ("exponentiallr", O.exponential_decay(BASE, 0.95), lambda o: S.ExponentialLR(o, gamma=0.95), 60),
        (
            "cosine",
            O.cosine_decay(BASE, 30, end_value=1e-3),
            lambda o: S.CosineAnnealingLR(o, 30, eta_min=1e-3),
            31,
        ),
        ("cosine_to_zero", O.cosine_decay(BASE, 25), lambda o: S.CosineAnnealingLR(o, 25), 25),
        ("onecycle", O.one_cycle(50, BASE), lambda o: S.OneCycleLR(o, max_lr=BASE, total_steps=50), 50),
        (
            "onecycle_linear_3phase",
            O.one_cycle(40, BASE, pct_start=0.25, anneal_strategy="linear", three_phase=True),
            lambda o: S.OneCycleLR(
                o, max_lr=BASE, total_steps=40, pct_start=0.25, anneal_strategy="linear", three_phase=True
            ),
            40,
        ),
        ("linearlr", O.linear_schedule(BASE / 3, BASE, 10), lambda o: S.LinearLR(o, 1 / 3, 1.0, 10), 20),
        (
            "linearlr_decay",
            O.linear_schedule(BASE, BASE * 0.1, 15),
            lambda o: S.LinearLR(o, 1.0, 0.1, total_iters=15),
            25,
        ),
        (
            "multisteplr",
            O.piecewise_constant(BASE, {5: 0.1, 12: 0.1}),
            lambda o: S.MultiStepLR(o, [5, 12], 0.1),
            20,
        ),
        (
            "warm_restarts",
            O.cosine_restarts(BASE, 5, 2, end_value=1e-3),
            lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-3),
            40,
        ),
    ]


@pytest.mark.torch
@pytest.mark.parametrize("index", range(10))
def test_matches_torch_scheduler(index: int) -> None:
    name, ours, make, steps = _torch_cases()[index]
    theirs = _torch_lrs(make, steps)
    mine = [ours(t) for t in range(steps)]
    # PyTorch updates most schedules recursively (lr_t from lr_{t-1}), so they differ from the
    # closed form by accumulated rounding; relative 1e-9 (absolute near zero) is far above that.
    np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-15, err_msg=name)


@given(t=st.integers(0, 500))
def test_closed_forms(t: int) -> None:
    assert O.constant_schedule(0.3)(t) == 0.3
    frac = min(t, 100) / 100
    assert math.isclose(O.polynomial_schedule(1.0, 0.1, 2.0, 100)(t), 0.9 * (1 - frac) ** 2 + 0.1)
    assert math.isclose(
        O.linear_schedule(1.0, 0.0, 100, transition_begin=50)(t), 1.0 - min(max(t - 50, 0), 100) / 100
    )
    assert math.isclose(O.exponential_decay(2.0, 0.9, 10)(t), 2.0 * 0.9 ** (t / 10))
    assert math.isclose(O.exponential_decay(2.0, 0.9, 10, end_value=0.5)(t), max(2.0 * 0.9 ** (t / 10), 0.5))
    assert math.isclose(O.inverse_time_decay(1.0, 0.1)(t), 1.0 / (1.0 + 0.1 * t))
    warm = O.warmup_constant(0.0, 1.0, 20)(t)
    assert math.isclose(warm, min(t, 20) / 20)
    wcd = O.warmup_cosine_decay(0.0, 1.0, 20, 220, end_value=0.1)(t)
    expected = t / 20 if t < 20 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t - 20, 200) / 200))
    assert math.isclose(wcd, expected, abs_tol=1e-15)


def test_join_schedules_restarts_the_count() -> None:
    s = O.join_schedules([O.constant_schedule(1.0), O.linear_schedule(0.0, 1.0, 10)], [5])
    assert [s(t) for t in (0, 4, 5, 10, 15, 100)] == [1.0, 1.0, 0.0, 0.5, 1.0, 1.0]


def test_sgdr_restarts_at_period_boundaries() -> None:
    s = O.sgdr(1.0, 4, 2)
    assert [s(t) for t in (0, 4, 12, 28)] == [1.0, 1.0, 1.0, 1.0]
    assert s(2) == pytest.approx(0.5)
    assert s(8) == pytest.approx(0.5)  # halfway through the second period (4..11)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: O.exponential_decay(1.0, 0.5, 0),
        lambda: O.cosine_decay(1.0, 0),
        lambda: O.one_cycle(10, 1.0, pct_start=1.5),
        lambda: O.one_cycle(10, 1.0, anneal_strategy="exp"),
        lambda: O.join_schedules([O.constant_schedule(1.0)], [3]),
        lambda: O.warmup_cosine_decay(0.0, 1.0, 10, 5),
        lambda: O.cosine_restarts(1.0, 5, 0),
    ],
)
def test_bad_arguments_raise(bad: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        bad()


def test_schedules_pickle() -> None:
    s = O.warmup_cosine_decay(0.0, 1.0, 5, 50)
    assert pickle.loads(pickle.dumps(s))(17) == s(17)


def test_schedule_drives_learning_rate_in_state() -> None:
    opt = O.sgd(O.exponential_decay(1.0, 0.5))
    state = opt.init({"w": np.zeros(1)})
    seen = []
    for _ in range(3):
        seen.append(O.current_learning_rate(state))
        state, params = opt.update(state, {"w": np.ones(1)})
    assert seen == [1.0, 0.5, 0.25]
    assert params["w"][0] == -1.75
