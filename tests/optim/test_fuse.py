"""fuse: an elementwise transformation on one vector per dtype gives the same numbers, bit for bit.

Every case of the transformation registry declares whether it is elementwise; the elementwise ones
fuse to the same bits (and their state reads the same per parameter), the others are refused
when ``fuse`` is called.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import optim as O
from functional_dl.errors import DomainError, ParamsError
from functional_dl.optim.fuse import OWN_VECTOR_FROM, fuse
from functional_dl.optim.transforms import empty_init
from functional_dl.testing import assert_bitwise_equal, snapshot
from functional_dl.testing import strategies as fst
from tests.optim.cases import TRANSFORM_CASES, TransformCase
from tests.optim.state_checks import arrays, assert_same_steps


def _transforms() -> list[O.GradientTransformation[tuple[object, ...]]]:
    return [
        O.chain(O.scale_by_adam(), O.scale_by_learning_rate(1e-2)),
        O.chain(O.add_decayed_weights(0.1), O.trace(0.9, nesterov=True), O.scale_by_learning_rate(0.1)),
        O.chain(O.scale_by_rms(centered=True), O.scale_by_learning_rate(1e-2)),
        O.chain(O.scale_by_lion(), O.scale_by_learning_rate(1e-3)),
    ]


@pytest.mark.parametrize("own_vector_from", [OWN_VECTOR_FROM, 4], ids=["joint", "own-from-4"])
@pytest.mark.parametrize("index", range(4))
@given(
    shapes=st.lists(fst.shapes(max_dims=2), min_size=1, max_size=4),
    mixed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_flat_equals_per_key_bit_for_bit(
    index: int, own_vector_from: int, shapes: list[tuple[int, ...]], mixed: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dtypes = [np.float32 if mixed and i % 2 else np.float64 for i in range(len(shapes))]
    params: dict[str, fdl.Array] = {
        f"{i}.w": rng.normal(size=s).astype(d) for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True))
    }
    per_key = O.optimizer(_transforms()[index])
    flat = O.optimizer(fuse(_transforms()[index], own_vector_from=own_vector_from))
    s1, s2 = per_key.init(params), flat.init(params)
    for _ in range(3):
        grads: dict[str, fdl.Array] = {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in params.items()}
        s1, p1 = per_key.update(s1, grads)
        s2, p2 = flat.update(s2, grads)
        for k, v in params.items():
            assert p2[k].dtype == v.dtype and p2[k].shape == v.shape
            assert p1[k].tobytes() == p2[k].tobytes(), k


def test_state_is_keyed_by_dtype_and_inputs_untouched() -> None:
    params: dict[str, fdl.Array] = {
        "w": np.ones((2, 3), np.float32),
        "b": np.zeros(3, np.float32),
        "s": np.ones(2),
    }
    tx = fuse(O.scale_by_adam())
    state = tx.init(params)
    assert sorted(state.inner.mu) == ["float32", "float64"]
    assert state.inner.mu["float32"].shape == (9,) and state.inner.mu["float64"].shape == (2,)
    grads = {k: np.full_like(v, 0.5) for k, v in params.items()}
    before = {k: v.copy() for k, v in grads.items()}
    updates, _ = tx.update(grads, state, params)
    assert {k: u.shape for k, u in updates.items()} == {k: v.shape for k, v in params.items()}
    assert all(np.array_equal(grads[k], before[k]) for k in grads)


def test_params_are_gathered_per_dtype_only_when_read() -> None:
    from functional_dl.optim.fuse import _layout, _LazyGather

    params: dict[str, fdl.Array] = {"w": np.ones((2, 2), np.float32), "s": np.arange(3.0)}
    lazy = _LazyGather(params, _layout(params))
    assert list(lazy) == ["float32", "float64"] and len(lazy) == 2
    assert lazy["float64"].tolist() == [0.0, 1.0, 2.0]
    assert lazy["float64"] is lazy["float64"]  # gathered once
    assert lazy["float32"].dtype == np.float32 and lazy["float32"].shape == (4,)
    with pytest.raises(KeyError):
        lazy["int8"]


ELEMENTWISE = [c for c in TRANSFORM_CASES if c.elementwise]
NOT_ELEMENTWISE = [c for c in TRANSFORM_CASES if not c.elementwise]


def _mixed_params() -> dict[str, fdl.Array]:
    rng = np.random.default_rng(3)
    return {
        "0.w": rng.normal(size=(3, 4)).astype(np.float32),
        "0.b": rng.normal(size=4).astype(np.float32),
        "2.w": rng.normal(size=(2, 3)),
    }


@pytest.mark.parametrize("case", TRANSFORM_CASES, ids=[c.id for c in TRANSFORM_CASES])
def test_each_transformation_declares_whether_it_is_elementwise(case: TransformCase) -> None:
    assert case.make().elementwise is case.elementwise


@pytest.mark.parametrize("case", NOT_ELEMENTWISE, ids=[c.id for c in NOT_ELEMENTWISE])
def test_fusing_what_is_not_elementwise_is_refused_when_built(case: TransformCase) -> None:
    with pytest.raises(DomainError, match=r"^fuse: the transformation given is not elementwise"):
        fuse(case.make())


def test_fusing_a_masked_decay_is_refused_and_unfused_it_decays_the_weights() -> None:
    decay = O.add_decayed_weights(0.5, mask=O.weights_only)
    with pytest.raises(DomainError, match="reads keys or whole arrays"):
        fuse(decay)
    with pytest.raises(DomainError, match="not elementwise"):
        fuse(O.chain(O.scale_by_adam(), decay))
    params = _mixed_params()
    zeros = {k: np.zeros_like(p) for k, p in params.items()}
    updates, _ = decay.update(zeros, decay.init(params), params)
    assert [k for k, u in updates.items() if u.any()] == ["0.w", "2.w"]


def test_a_users_own_transformation_is_not_fused_unless_it_says_so() -> None:
    def _double(
        updates: fdl.Params, state: O.EmptyState, params: fdl.Params, /
    ) -> tuple[fdl.Params, O.EmptyState]:
        return {k: g * 2.0 for k, g in updates.items()}, state

    with pytest.raises(DomainError, match=r"^fuse: the transformation given is not elementwise"):
        fuse(O.GradientTransformation(empty_init, _double))
    fuse(O.GradientTransformation(empty_init, _double, elementwise=True))


@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.id for c in ELEMENTWISE])
def test_fused_equals_unfused_bit_for_bit_and_its_state_reads_by_name(case: TransformCase) -> None:
    params = _mixed_params()
    fused = O.optimizer(fuse(case.make()))
    assert isinstance(fused.init(params).inner, O.FusedState)
    # Read per parameter, the fused state is the unfused one: same paths, same bits.
    assert_same_steps(O.optimizer(case.make()), fused, params)


def test_find_state_reads_moments_and_momentum_by_parameter_name() -> None:
    params = _mixed_params()
    grads = {k: np.ones_like(p) for k, p in params.items()}
    adam = O.adam(0.1)
    state, _ = adam.update(adam.init(params), grads)
    assert isinstance(state.inner, O.FusedState)  # stored as one vector per dtype
    moments = O.find_state(state, O.ScaleByAdamState)
    assert sorted(moments.mu) == sorted(params)
    for k, p in params.items():
        assert moments.mu[k].shape == p.shape and moments.mu[k].dtype == p.dtype
        np.testing.assert_allclose(moments.mu[k], 0.1 * grads[k], rtol=1e-6)
        np.testing.assert_allclose(moments.nu[k], 0.001 * grads[k] ** 2, rtol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        moments.mu["0.w"][0, 0] = 1.0  # a view onto the state, not a copy to edit
    sgd = O.sgd(0.1, momentum=0.9)
    state2, _ = sgd.update(sgd.init(params), grads)
    assert_bitwise_equal(O.find_state(state2, O.TraceState).trace, grads, "momentum buffer")
    masked = O.adamw(0.1, mask=O.weights_only)  # not fused: read the same way
    state3, _ = masked.update(masked.init(params), grads)
    assert sorted(O.find_state(state3, O.ScaleByAdamState).mu) == sorted(params)
    with pytest.raises(ValueError, match="no ScaleByLionState"):
        O.find_state(state, O.ScaleByLionState)


def test_unfused_leaves_the_state_alone() -> None:
    params = _mixed_params()
    opt = O.adam(0.1)
    state = opt.init(params)
    before = snapshot(arrays(state))
    view = O.unfused(state)
    assert isinstance(view, O.OptimizerState) and view.params is state.params
    assert_bitwise_equal(arrays(state), before, "unfused modified the state")
    plain = O.optimizer(O.chain(O.scale_by_adam(), O.scale_by_learning_rate(0.1))).init(params)
    assert O.unfused(plain) is plain  # nothing fused: nothing rebuilt


@pytest.mark.parametrize(
    "change",
    [
        {"0.b": np.zeros(5, np.float32)},  # another size
        {"0.w": np.zeros((4, 3), np.float32)},  # the same size, another shape
        {"0.b": np.zeros(4)},  # another dtype
        {"9.w": np.zeros(2, np.float32)},  # a key more
    ],
    ids=["size", "shape", "dtype", "extra_key"],
)
def test_a_fused_state_refuses_params_of_another_layout(change: dict[str, fdl.Array]) -> None:
    params = _mixed_params()
    opt = O.adam(0.1)
    state = opt.init(params)
    other = {**params, **change}
    with pytest.raises(
        ParamsError, match=r"fuse: the updates or params do not .* expected .*0\.b \(4,\) float32"
    ):
        opt.transform.update(other, state.inner, other)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_own_vector_from_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(DomainError, match=rf"^fuse: own_vector_from must be a positive integer, got {bad!r}"):
        fuse(O.scale_by_adam(), own_vector_from=bad)  # type: ignore[arg-type]
