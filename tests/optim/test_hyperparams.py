"""Reading the learning rate and step from the state, changing hyperparameters between steps."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from functional_dl import optim as O
from tests.optim.state_checks import leaves

P0 = {"w": np.array([1.0, -1.0])}
G = {"w": np.array([0.5, 2.0])}


def test_current_learning_rate_of_every_alias() -> None:
    for opt in (O.sgd(0.3), O.adam(0.3), O.lamb(0.3), O.rmsprop(0.3, momentum=0.5)):
        state = opt.init(P0)
        assert O.current_learning_rate(state) == 0.3
        state, _ = opt.update(state, G)
        assert O.current_learning_rate(state) == 0.3 and state.step == 1


def test_injected_learning_rate_changes_without_rebuilding() -> None:
    opt = O.optimizer(O.inject_hyperparams(O.adam, learning_rate=0.1, b1=0.9))
    plain = O.adam(0.1)
    state, reference = opt.init(P0), plain.init(P0)
    state, _ = opt.update(state, G)
    reference, _ = plain.update(reference, G)
    state = O.set_hyperparams(state, learning_rate=0.01)
    assert O.current_learning_rate(state) == 0.01
    assert O.current_hyperparams(state) == {"learning_rate": 0.01, "b1": 0.9}
    before = state.params["w"].copy()
    state, params = opt.update(state, G)
    # same Adam moments as the plain run (not reset), but a tenth of its second step
    _, plain_after = plain.update(reference, G)
    np.testing.assert_allclose(
        params["w"] - before, (plain_after["w"] - reference.params["w"]) / 10, rtol=1e-12
    )
    assert O.current_learning_rate(state) == 0.01


def test_injected_schedule_is_evaluated_each_step_and_can_be_overridden() -> None:
    opt = O.optimizer(O.inject_hyperparams(O.sgd, learning_rate=O.exponential_decay(1.0, 0.5)))
    state = opt.init(P0)
    rates = []
    for i in range(4):
        if i == 2:
            state = O.set_hyperparams(state, learning_rate=10.0)
        rates.append(O.current_learning_rate(state))
        state, _ = opt.update(state, {"w": np.zeros(2)})
    assert rates == [1.0, 0.5, 10.0, 0.125]


def test_injected_state_is_plain_data_and_pickles() -> None:
    opt = O.optimizer(
        O.inject_hyperparams(O.adamw, learning_rate=0.1, weight_decay=0.01, static={"mask": O.weights_only})
    )
    state, _ = opt.update(opt.init(P0), G)
    assert {type(leaf) for _, leaf in leaves(state)} <= {np.ndarray, int, float, bool, type(None)}
    opt2, state2 = pickle.loads(pickle.dumps((opt, state)))
    a, _ = opt.update(state, G)
    b, _ = opt2.update(state2, G)
    np.testing.assert_array_equal(a.params["w"], b.params["w"])


def test_set_hyperparams_errors() -> None:
    opt = O.optimizer(O.inject_hyperparams(O.sgd, learning_rate=0.1))
    with pytest.raises(KeyError, match="momentum"):
        O.set_hyperparams(opt.init(P0), momentum=0.9)
    with pytest.raises(KeyError, match="inject_hyperparams"):
        O.set_hyperparams(O.sgd(0.1).init(P0), learning_rate=0.2)
    with pytest.raises(TypeError, match="static"):
        O.inject_hyperparams(O.sgd, learning_rate=0.1, nesterov=True)


def test_current_learning_rate_refuses_ambiguity() -> None:
    t = O.partition({"a": O.sgd(0.1).transform, "b": O.sgd(0.2).transform}, lambda k: "a")
    with pytest.raises(ValueError, match="found 2"):
        O.current_learning_rate(O.optimizer(t).init(P0))
