"""Contract tests over every named optimizer in the registry (``cases.py``).

* convergence on an ill-conditioned quadratic bowl and on Rosenbrock;
* float32 params, updates and state stay float32;
* purity: inputs unchanged, repeated calls bit-identical;
* pickling: optimizer and state survive a round trip and continue identically;
* the state is plain data (NamedTuples, tuples, str-keyed mappings, arrays, numbers);
* every alias documents its update rule.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O
from functional_dl.testing import assert_bitwise_equal, snapshot
from functional_dl.testing import strategies as fst
from functional_dl.types import Array, Params
from tests.optim.cases import OPTIMIZER_CASES, OptimizerCase
from tests.optim.problems import (
    QUAD_TARGET,
    quadratic,
    quadratic_start,
    rosenbrock,
    rosenbrock_start,
    run,
)
from tests.optim.state_checks import arrays, leaves

ids = [c.id for c in OPTIMIZER_CASES]


def _optimizer_for(case: OptimizerCase, problem: str) -> O.Optimizer[Any]:
    lr, steps = case.quad if problem == "quad" else case.rosen
    return case.make(O.cosine_decay(lr, steps) if problem in case.decay else lr)


def _distance(params: Params, target: Params) -> float:
    return max(float(np.max(np.abs(params[k] - target[k]))) for k in target)


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_converges_on_quadratic(case: OptimizerCase) -> None:
    steps = case.quad[1]
    params, _ = run(_optimizer_for(case, "quad"), quadratic_start(), quadratic, steps)
    assert _distance(params, QUAD_TARGET) < 1e-2


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_converges_on_rosenbrock(case: OptimizerCase) -> None:
    steps = case.rosen[1]
    params, _ = run(_optimizer_for(case, "rosen"), rosenbrock_start(), rosenbrock, steps)
    assert _distance(params, {"xy": np.ones(2)}) < 1e-2


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_float32_stays_float32(case: OptimizerCase) -> None:
    opt = _optimizer_for(case, "quad")
    state = opt.init(quadratic_start(np.float32))
    for _ in range(3):
        _, grads = quadratic(state.params)
        updates, _ = opt.transform.update(grads, state.inner, state.params)
        assert all(u.dtype == np.float32 for u in updates.values())
        state, params = opt.update(state, grads)
    assert all(p.dtype == np.float32 for p in params.values())
    for path, a in arrays(state.inner).items():
        assert a.dtype in (np.float32, np.float64), path
        # only injected hyperparameters (0-d) may be float64
        assert a.dtype == np.float32 or a.ndim == 0, path


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_purity(case: OptimizerCase) -> None:
    opt = _optimizer_for(case, "quad")
    state = opt.init(quadratic_start())
    for _ in range(2):  # get past the first step, whose state is all zeros
        state, _ = opt.update(state, quadratic(state.params)[1])
    _, grads = quadratic(state.params)
    before_state, before_grads = snapshot(arrays(state)), snapshot(grads)
    first, p1 = opt.update(state, grads)
    second, p2 = opt.update(state, grads)
    assert_bitwise_equal(arrays(state), before_state, "state was modified")
    assert_bitwise_equal(grads, before_grads, "grads were modified")
    assert_bitwise_equal(p1, p2, "repeated calls disagree on params")
    assert_bitwise_equal(arrays(first), arrays(second), "repeated calls disagree on state")
    assert all(not a.flags.writeable for a in p1.values())


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_pickle_round_trip(case: OptimizerCase) -> None:
    opt = _optimizer_for(case, "quad")
    state = opt.init(quadratic_start())
    state, _ = opt.update(state, quadratic(state.params)[1])
    opt2, state2 = pickle.loads(pickle.dumps((opt, state)))
    grads = quadratic(state.params)[1]
    a, _ = opt.update(state, grads)
    b, _ = opt2.update(state2, grads)
    assert_bitwise_equal(arrays(a), arrays(b), "unpickled optimizer diverges")
    assert a.step == b.step == 2


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
def test_state_is_plain_data(case: OptimizerCase) -> None:
    opt = _optimizer_for(case, "quad")
    state = opt.init(quadratic_start())
    state, _ = opt.update(state, quadratic(state.params)[1])
    kinds = {type(leaf) for _, leaf in leaves(state)}
    assert kinds <= {np.ndarray, int, float, bool, str, type(None)}
    assert O.current_learning_rate(state) > 0


@pytest.mark.parametrize(
    "alias",
    [
        O.sgd,
        O.adam,
        O.adamw,
        O.amsgrad,
        O.nadam,
        O.radam,
        O.rmsprop,
        O.adagrad,
        O.adadelta,
        O.adamax,
        O.adafactor,
        O.lion,
        O.lamb,
        O.lars,
    ],
)
def test_docstring_states_update_rule(alias: Any) -> None:
    assert "Update rule" in alias.__doc__


def test_sgd_refuses_nesterov_with_dampening_or_without_momentum() -> None:
    with pytest.raises(ValueError, match=r"sgd: Nesterov momentum requires a momentum and zero dampening"):
        O.sgd(0.1, momentum=0.9, dampening=0.5, nesterov=True)
    with pytest.raises(ValueError, match=r"sgd: .*momentum=0\.0"):
        O.sgd(0.1, nesterov=True)


def test_sgd_dampening_needs_momentum_to_act() -> None:
    # As in PyTorch, dampening only scales what enters the momentum buffer.
    p, g = {"w": np.array([1.0])}, {"w": np.array([2.0])}
    plain, damped = O.sgd(0.1), O.sgd(0.1, dampening=0.5)
    assert_bitwise_equal(plain.update(plain.init(p), g)[1], damped.update(damped.init(p), g)[1], "differ")


def _composites() -> list[O.Optimizer[Any]]:
    group = O.partition(
        {
            "w": O.inject_hyperparams(O.adamw, learning_rate=0.1, static={"mask": O.weights_only}),
            "b": O.named_chain(
                ("clip", O.clip_by_block_norm(1.0)), ("lr", O.sgd(0.1, momentum=0.9).transform)
            ),
        },
        O.labels_by_pattern({"*.w": "w", "*": "b"}),
    )
    return [
        O.optimizer(O.chain(O.apply_if_finite(group), O.reduce_on_plateau(patience=0))),
        O.optimizer(O.lookahead(O.accumulate_gradients(O.radam(0.1).transform, 2))),
        O.optimizer(O.chain(O.nadam(0.1).transform, O.ema_params(0.9))),
    ]


@pytest.mark.parametrize("index", range(len(OPTIMIZER_CASES) + 3))
def test_state_round_trips_through_checkpoint(index: int, tmp_path: Any) -> None:
    from functional_dl import checkpoint

    opt = (
        _optimizer_for(OPTIMIZER_CASES[index], "quad")
        if index < len(OPTIMIZER_CASES)
        else _composites()[index - len(OPTIMIZER_CASES)]
    )
    state = opt.init(quadratic_start(np.float32))
    for _ in range(3):
        state, _ = opt.update(state, quadratic(state.params)[1])
    state = O.observe_loss(state, 1.0)
    checkpoint.save(tmp_path / "opt.npz", state)
    restored = checkpoint.load(tmp_path / "opt.npz", template=opt.init(quadratic_start(np.float32)))
    assert type(restored) is type(state)
    assert_bitwise_equal(arrays(restored), arrays(state), "restored state differs")
    grads = quadratic(state.params)[1]
    a, _ = opt.update(state, grads)
    b, _ = opt.update(restored, grads)
    assert_bitwise_equal(arrays(a), arrays(b), "resumed run differs")


@pytest.mark.parametrize("index", range(3))
def test_composites_are_pure_picklable_and_keep_float32(index: int) -> None:
    opt = _composites()[index]
    state = opt.init(quadratic_start(np.float32))
    for _ in range(3):
        state, _ = opt.update(state, quadratic(state.params)[1])
    grads = quadratic(state.params)[1]
    before_state, before_grads = snapshot(arrays(state)), snapshot(grads)
    first, p1 = opt.update(state, grads)
    second, p2 = opt.update(state, grads)
    assert_bitwise_equal(arrays(state), before_state, "state was modified")
    assert_bitwise_equal(grads, before_grads, "grads were modified")
    assert_bitwise_equal(arrays(first), arrays(second), "repeated calls disagree")
    assert_bitwise_equal(p1, p2, "repeated calls disagree on params")
    opt2, state2 = pickle.loads(pickle.dumps((opt, state)))
    third, _ = opt2.update(state2, grads)
    assert_bitwise_equal(arrays(first), arrays(third), "unpickled optimizer diverges")
    assert all(p.dtype == np.float32 for p in p1.values())
    assert all(a.dtype == np.float32 or a.ndim == 0 for a in arrays(first).values())


@st.composite
def _params_and_grads(draw: st.DrawFn) -> tuple[dict[str, Array], list[dict[str, Array]]]:
    names = draw(
        st.lists(st.sampled_from(["0.w", "0.b", "1.scale", "2.w"]), min_size=1, max_size=4, unique=True)
    )
    shapes = {k: draw(fst.shapes(max_dims=3, max_side=4)) for k in names}
    params = {k: draw(fst.arrays(s, dtype=np.float32)) for k, s in shapes.items()}
    grads = [{k: draw(fst.arrays(s, dtype=np.float32)) for k, s in shapes.items()} for _ in range(3)]
    return params, grads


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=ids)
@given(problem=_params_and_grads())
def test_any_structure_keeps_keys_shapes_dtypes_and_purity(
    case: OptimizerCase, problem: tuple[dict[str, Array], list[dict[str, Array]]]
) -> None:
    params, grad_steps = problem
    opt = case.make(0.01)
    for dtype in (np.float32, np.float64):
        state = opt.init({k: p.astype(dtype) for k, p in params.items()})
        for grads in grad_steps:
            g: dict[str, Array] = {k: v.astype(dtype) for k, v in grads.items()}
            before = snapshot(g)
            again, _ = opt.update(state, g)
            state, new = opt.update(state, g)
            assert_bitwise_equal(g, before, "grads were modified")
            assert_bitwise_equal(arrays(again), arrays(state), "repeated calls disagree")
            assert {k: (v.shape, v.dtype) for k, v in new.items()} == {
                k: (p.shape, np.dtype(dtype)) for k, p in params.items()
            }
            assert all(np.isfinite(v).all() for v in new.values())
