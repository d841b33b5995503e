"""Gradient accumulation, the moving average of params, lookahead: against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from functional_dl import optim as O

P0 = {"w": np.array([1.0, -2.0, 0.5])}


def _grad(i: int) -> dict[str, np.ndarray]:
    return {"w": np.array([0.3, -1.0, 2.0]) * (i + 1)}


def test_accumulate_gradients_equals_mean_over_micro_steps() -> None:
    k = 3
    acc = O.optimizer(O.accumulate_gradients(O.adam(0.1).transform, every_k=k))
    big = O.adam(0.1)
    s_acc, s_big = acc.init(P0), big.init(P0)
    for step in range(4):
        micro = [_grad(step * k + j) for j in range(k)]
        for j, g in enumerate(micro):
            before = s_acc.params
            s_acc, p_acc = acc.update(s_acc, g)
            if j < k - 1:
                np.testing.assert_array_equal(p_acc["w"], before["w"])
        s_big, p_big = big.update(s_big, {"w": np.sum([m["w"] for m in micro], axis=0) / k})
        np.testing.assert_allclose(p_acc["w"], p_big["w"], rtol=1e-14)
    assert s_acc.inner.mini_step == 0


def test_ema_params_follows_its_recursion() -> None:
    opt = O.optimizer(O.chain(O.sgd(0.1).transform, O.ema_params(0.9)))
    state = opt.init(P0)
    ema = P0["w"].copy()
    for i in range(5):
        state, params = opt.update(state, _grad(i))
        ema = 0.9 * ema + 0.1 * params["w"]
    ema_state = state.inner[1]
    assert isinstance(ema_state, O.EmaParamsState)
    assert ema_state.step == 5
    np.testing.assert_allclose(ema_state.ema["w"], ema, rtol=1e-15)


def test_lookahead_synchronises_on_slow_weights() -> None:
    fast = O.sgd(0.1)
    opt = O.optimizer(O.lookahead(fast.transform, sync_period=3, alpha=0.5))
    state = opt.init(P0)
    slow = P0["w"].copy()
    theta = P0["w"].copy()
    for i in range(9):
        theta = theta - 0.1 * _grad(i)["w"]
        if (i + 1) % 3 == 0:
            slow = slow + 0.5 * (theta - slow)
            theta = slow.copy()
        state, params = opt.update(state, _grad(i))
        np.testing.assert_allclose(params["w"], theta, rtol=1e-13)
    np.testing.assert_allclose(state.inner.slow["w"], slow, rtol=1e-15)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: O.accumulate_gradients(O.scale(1.0), 0),
        lambda: O.lookahead(O.scale(1.0), 0),
        lambda: O.lookahead(O.scale(1.0), 2, alpha=2.0),
        lambda: O.ema_params(1.5),
    ],
)
def test_bad_arguments(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]
