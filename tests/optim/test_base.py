"""The user surface: init/update, bad gradients rejected with clear errors, dtype handling."""

from __future__ import annotations

import numpy as np
import pytest

from functional_dl import optim as O
from functional_dl.errors import ParamsError
from functional_dl.types import Array

PARAMS = {"0.w": np.ones((2, 3)), "0.b": np.zeros(2)}


def test_state_holds_params_inner_and_step() -> None:
    opt = O.adam(0.1)
    state = opt.init(PARAMS)
    assert state.step == 0 and state.params.keys() == PARAMS.keys()
    state, params = opt.update(state, {k: np.ones_like(v) for k, v in PARAMS.items()})
    assert state.step == 1 and state.params is params
    assert not params["0.w"].flags.writeable


def test_missing_and_unexpected_keys_are_listed() -> None:
    opt = O.sgd(0.1)
    state = opt.init(PARAMS)
    with pytest.raises(ParamsError, match=r"missing keys \['0.b'\]; unexpected keys \['1.b'\]") as err:
        opt.update(state, {"0.w": np.ones((2, 3)), "1.b": np.ones(2)})
    assert err.value.path == "grads"


def test_shape_and_dtype_mismatches_are_listed() -> None:
    opt = O.adam(0.1)
    state = opt.init(PARAMS)
    bad: dict[str, Array] = {"0.w": np.ones((3, 2)), "0.b": np.ones(2, np.float32)}
    with pytest.raises(ParamsError) as err:
        opt.update(state, bad)
    message = str(err.value)
    assert "'0.w' has shape (3, 2), expected (2, 3)" in message
    assert "'0.b' has dtype float32, expected float64" in message


def test_update_rejects_something_else_than_a_state() -> None:
    opt = O.sgd(0.1)
    with pytest.raises(TypeError, match=r"state from opt\.init"):
        opt.update(PARAMS, PARAMS)  # type: ignore[arg-type]


def test_apply_updates_keeps_param_dtype() -> None:
    params = {"w": np.ones(2, np.float32)}
    out = O.apply_updates(params, {"w": np.full(2, 0.5)})
    assert out["w"].dtype == np.float32 and out["w"][0] == 1.5


def test_nan_gradient_with_apply_if_finite_is_skipped_and_counted() -> None:
    opt = O.optimizer(O.apply_if_finite(O.adam(0.1)))
    state = opt.init(PARAMS)
    good = {k: np.ones_like(v) for k, v in PARAMS.items()}
    state, after_good = opt.update(state, good)
    bad = {"0.w": np.full((2, 3), np.nan), "0.b": np.array([1.0, np.inf])}
    inner_before = state.inner.inner
    for n in (1, 2):
        state, params = opt.update(state, bad)
        for k in PARAMS:
            np.testing.assert_array_equal(params[k], after_good[k])
        assert state.inner.total_notfinite == n and state.inner.notfinite_count == n
        assert state.inner.last_finite is False
        assert state.inner.inner is inner_before  # Adam's moments untouched
    state, _ = opt.update(state, good)
    assert state.inner.notfinite_count == 0 and state.inner.total_notfinite == 2
    assert O.find_state(state, O.ScaleByAdamState).step == 2  # Adam saw two good steps only


def test_non_array_gradient_is_rejected() -> None:
    opt = O.sgd(0.1)
    with pytest.raises(ParamsError, match=r"'0\.b' must be a NumPy array, got list"):
        opt.update(opt.init(PARAMS), {"0.w": np.ones((2, 3)), "0.b": [1.0, 2.0]})  # type: ignore[dict-item]


def test_zero_dimensional_params_are_refused_clearly() -> None:
    with pytest.raises(ParamsError, match=r"\['t'\] are 0-d"):
        O.adam(0.1).init({"t": np.array(1.0), "w": np.ones(2)})
