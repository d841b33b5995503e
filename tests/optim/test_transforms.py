"""The basic transformations against their update rules: learning rates, schedules, momentum."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from functional_dl import optim as O
from functional_dl.errors import DomainError

P = {"w": np.array([1.0, 2.0])}


def test_learning_rate_state_records_the_next_rate() -> None:
    t = O.scale_by_learning_rate(O.piecewise_constant(1.0, {2: 0.1}))
    state = t.init(P)
    seen = []
    for _ in range(4):
        seen.append(state.learning_rate)
        u, state = t.update({"w": np.ones(2)}, state, P)
        assert u["w"][0] == pytest.approx(-seen[-1])
    assert seen == pytest.approx([1.0, 1.0, 0.1, 0.1]) and state.step == 4


def test_scale_by_schedule_uses_earlier_step_count() -> None:
    t = O.scale_by_schedule(O.linear_schedule(0.0, 1.0, 4))
    state = t.init(P)
    out = []
    for _ in range(3):
        u, state = t.update({"w": np.ones(2)}, state, P)
        out.append(float(u["w"][0]))
    assert out == [0.0, 0.25, 0.5]


@pytest.mark.parametrize(
    ("nesterov", "dampening"), [(False, 0.0), (True, 0.0), (False, 0.25), (False, 0.5), (False, 1.0)]
)
def test_trace_follows_its_rule(nesterov: bool, dampening: float) -> None:
    rng = np.random.default_rng(0)
    t = O.trace(0.8, nesterov=nesterov, dampening=dampening)
    state = t.init(P)
    m = np.zeros(2)
    for step in range(6):
        g = rng.normal(size=2)
        m = g if step == 0 else 0.8 * m + (1 - dampening) * g
        u, state = t.update({"w": g}, state, P)
        np.testing.assert_allclose(u["w"], g + 0.8 * m if nesterov else m, rtol=1e-15)
        np.testing.assert_allclose(state.trace["w"], m, rtol=1e-15)
        assert state.step == step + 1


def test_dampened_trace_first_step_is_the_gradient_itself() -> None:
    # torch.optim.SGD: b_1 = g_1, not (1 - dampening) g_1; the buffer must not alias the gradient.
    g = {"w": np.array([2.0, -3.0])}
    t = O.trace(0.9, dampening=0.5)
    u, state = t.update(g, t.init(P), P)
    np.testing.assert_array_equal(u["w"], g["w"])
    np.testing.assert_array_equal(state.trace["w"], g["w"])
    assert not np.shares_memory(state.trace["w"], g["w"])
    u, state = t.update(g, state, P)
    np.testing.assert_array_equal(u["w"], 0.9 * g["w"] + 0.5 * g["w"])


def test_nesterov_trace_refuses_dampening() -> None:
    with pytest.raises(ValueError, match=r"trace: Nesterov momentum needs zero dampening.*0\.5"):
        O.trace(0.9, nesterov=True, dampening=0.5)


def test_dampened_trace_keeps_float32() -> None:
    p32 = {"w": np.ones(3, np.float32)}
    t = O.trace(0.9, dampening=0.5)
    state = t.init(p32)
    for _ in range(2):  # the first step copies; the second scales the gradient
        u, state = t.update(p32, state, p32)
        assert u["w"].dtype == np.float32 and state.trace["w"].dtype == np.float32


def test_transforms_do_not_upcast_float32() -> None:
    p32 = {"w": np.ones(3, np.float32)}
    transforms: list[O.GradientTransformation[Any]] = [
        O.scale(0.5),
        O.scale_by_learning_rate(0.1),
        O.trace(0.9),
        O.add_decayed_weights(0.1),
    ]
    for t in transforms:
        u, _ = t.update(p32, t.init(p32), p32)
        assert u["w"].dtype == np.float32


def test_every_transformation_states_its_update_rule() -> None:
    import inspect

    checked = []
    for name in O.__all__:
        f = getattr(O, name)
        if (
            name != "optimizer"
            and inspect.isfunction(f)
            and str(inspect.signature(f).return_annotation).startswith(
                ("GradientTransformation", "Optimizer")
            )
        ):
            assert "Update rule" in (inspect.getdoc(f) or ""), name
            checked.append(name)
    assert len(checked) >= 35  # every transformation and every named optimizer


def test_a_named_optimizer_is_a_part_of_a_chain_as_in_optax() -> None:
    # chain(clip_by_global_norm(1.0), adam(1e-3)) takes adam's transformation: the same bits as the
    # chain written out by hand.
    rng = np.random.default_rng(1)
    params = {"0.w": rng.normal(size=(3, 4)).astype(np.float32), "0.b": rng.normal(size=4).astype(np.float32)}
    idiom = O.optimizer(O.chain(O.clip_by_global_norm(1.0), O.adam(1e-3)))
    by_hand = O.optimizer(
        O.chain(O.clip_by_global_norm(1.0), O.scale_by_adam(), O.scale_by_learning_rate(1e-3))
    )
    s1, s2 = idiom.init(params), by_hand.init(params)
    for _ in range(5):
        grads = {k: (rng.normal(size=p.shape) * 3.0).astype(p.dtype) for k, p in params.items()}
        s1, p1 = idiom.update(s1, grads)
        s2, p2 = by_hand.update(s2, grads)
        for k in params:
            assert p1[k].dtype == np.float32 and p1[k].tobytes() == p2[k].tobytes(), k
    assert O.find_state(s1, O.ScaleByAdamState).step == 5
    assert O.current_learning_rate(s1) == 1e-3


def test_named_optimizers_are_parts_of_every_composite() -> None:
    params = {"0.w": np.ones((2, 2)), "0.b": np.ones(2)}
    grads = {k: np.full_like(p, 0.5) for k, p in params.items()}
    want = O.sgd(0.1, momentum=0.9).update(O.sgd(0.1, momentum=0.9).init(params), grads)[1]
    composites: list[O.GradientTransformation[Any]] = [
        O.named_chain(("clip", O.clip(1.0)), ("sgd", O.sgd(0.1, momentum=0.9))),
        O.masked(O.sgd(0.1, momentum=0.9), O.key_pattern("*")),
        O.partition({"all": O.sgd(0.1, momentum=0.9)}, O.labels_by_pattern({"*": "all"})),
        O.apply_if_finite(O.sgd(0.1, momentum=0.9)),
        O.accumulate_gradients(O.sgd(0.1, momentum=0.9), 1),
        O.lookahead(O.sgd(0.1, momentum=0.9), sync_period=5),
    ]
    for tx in composites:
        opt = O.optimizer(tx)
        _, got = opt.update(opt.init(params), grads)
        for k in params:
            assert got[k].tobytes() == want[k].tobytes(), k


@pytest.mark.parametrize("bad", ["adam", O.adam, None])
def test_chain_refuses_what_is_not_a_transformation_when_built(bad: Any) -> None:
    with pytest.raises(DomainError, match=r"^chain: part 1 is a \w+; expected a GradientTransformation"):
        O.chain(O.clip(1.0), bad)
