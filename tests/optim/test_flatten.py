"""flatten: an elementwise transformation on one vector per dtype gives the same numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import optim as O
from functional_dl.optim.flatten import flatten
from functional_dl.testing import strategies as fst


def _transforms() -> list[O.GradientTransformation[tuple[object, ...]]]:
    return [
        O.chain(O.scale_by_adam(), O.scale_by_learning_rate(1e-2)),
        O.chain(O.add_decayed_weights(0.1), O.trace(0.9, nesterov=True), O.scale_by_learning_rate(0.1)),
        O.chain(O.scale_by_rms(centered=True), O.scale_by_learning_rate(1e-2)),
        O.chain(O.scale_by_lion(), O.scale_by_learning_rate(1e-3)),
    ]


@pytest.mark.parametrize("index", range(4))
@given(
    shapes=st.lists(fst.shapes(max_dims=2), min_size=1, max_size=4),
    mixed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_flat_equals_per_key_bit_for_bit(
    index: int, shapes: list[tuple[int, ...]], mixed: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dtypes = [np.float32 if mixed and i % 2 else np.float64 for i in range(len(shapes))]
    params: dict[str, fdl.Array] = {
        f"{i}.w": rng.normal(size=s).astype(d) for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True))
    }
    per_key = O.optimizer(_transforms()[index])
    flat = O.optimizer(flatten(_transforms()[index]))
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
    tx = flatten(O.scale_by_adam())
    state = tx.init(params)
    assert sorted(state.mu) == ["float32", "float64"]
    assert state.mu["float32"].shape == (9,) and state.mu["float64"].shape == (2,)
    grads = {k: np.full_like(v, 0.5) for k, v in params.items()}
    before = {k: v.copy() for k, v in grads.items()}
    updates, _ = tx.update(grads, state, params)
    assert {k: u.shape for k, u in updates.items()} == {k: v.shape for k, v in params.items()}
    assert all(np.array_equal(grads[k], before[k]) for k in grads)


def test_params_are_gathered_per_dtype_only_when_read() -> None:
    from functional_dl.optim.flatten import _layout, _LazyGather

    params: dict[str, fdl.Array] = {"w": np.ones((2, 2), np.float32), "s": np.arange(3.0)}
    lazy = _LazyGather(params, _layout(params))
    assert list(lazy) == ["float32", "float64"] and len(lazy) == 2
    assert lazy["float64"].tolist() == [0.0, 1.0, 2.0]
    assert lazy["float64"] is lazy["float64"]  # gathered once
    assert lazy["float32"].dtype == np.float32 and lazy["float32"].shape == (4,)
    with pytest.raises(KeyError):
        lazy["int8"]
