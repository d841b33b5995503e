"""Tests for functional_dl.params: frozen mappings, pure helpers, the structure check."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import params as P
from functional_dl.errors import DTypeError, ParamsError, ShapeError
from functional_dl.testing import strategies as fst
from tests.sweep import masked, matrix


def _sample() -> P.FrozenParams:
    return P.freeze({"0.w": np.arange(6.0).reshape(2, 3), "0.b": np.zeros(2), "2.w": np.ones((1, 2))})


def test_frozen_refuses_mutation() -> None:
    p = _sample()
    with pytest.raises(TypeError):
        p["x"] = np.zeros(1)
    with pytest.raises(TypeError):
        del p["0.w"]
    for method in ("clear", "popitem"):
        with pytest.raises(TypeError):
            getattr(p, method)()
    with pytest.raises(TypeError):
        p.update({"a": np.zeros(1)})
    with pytest.raises(ValueError, match="read-only"):
        p["0.w"] += 1


def test_freeze_copies_writable_inputs_and_leaves_them_writable() -> None:
    w = np.ones(3)
    p = P.freeze({"w": w})
    assert w.flags.writeable  # the caller's array is not touched
    w[0] = 5.0
    assert p["w"][0] == 1.0  # and the frozen copy does not see later writes


def test_freeze_shares_readonly_arrays() -> None:
    p = _sample()
    assert P.freeze(p)["0.w"] is p["0.w"]


def test_freeze_rejects_non_float() -> None:
    with pytest.raises(ParamsError, match="floating"):
        P.freeze({"w": np.arange(3)})


def test_pickle_round_trip_keeps_frozen() -> None:
    p = _sample()
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, P.FrozenParams)
    assert P.allclose(p, q, rtol=0)
    assert not q["0.w"].flags.writeable


def test_prefix_and_strip_are_inverse() -> None:
    p = {"w": np.ones(1), "b": np.zeros(1)}
    q = P.prefix(p, "enc")
    assert sorted(q) == ["enc.b", "enc.w"]
    assert P.strip_prefix({**q, "other.w": np.ones(1)}, "enc").keys() == p.keys()


def test_merge_rejects_duplicates() -> None:
    with pytest.raises(ParamsError, match=r"duplicate keys when merging: \['a'\]"):
        P.merge_params({"a": np.ones(1)}, {"a": np.ones(1), "b": np.ones(1)})


@given(st.lists(fst.arrays(fst.shapes(max_dims=2)), min_size=1, max_size=4), st.floats(-3, 3))
def test_tree_arithmetic_and_norm(arrays: list[np.ndarray], factor: float) -> None:
    a = {str(i): v for i, v in enumerate(arrays)}
    b = P.tree_scale(a, factor)
    s = P.tree_add(a, b)
    back = P.tree_sub(s, b)
    for k, v in a.items():
        np.testing.assert_allclose(s[k], v * (1 + factor), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(back[k], v, rtol=1e-12, atol=1e-12)
    flat = np.concatenate([v.ravel() for v in arrays])
    assert P.global_norm(a) == pytest.approx(float(np.linalg.norm(flat)), rel=1e-12, abs=1e-12)
    assert P.num_params(a) == flat.size
    assert all(not z.any() for z in P.zeros_like(a).values())


def test_tree_add_mismatch_names_keys() -> None:
    with pytest.raises(ParamsError, match=r"missing keys \['b'\]"):
        P.tree_add({"a": np.ones(1)}, {"a": np.ones(1), "b": np.ones(1)})


def test_cast_keeps_keys_and_changes_dtype() -> None:
    p = P.cast(_sample(), np.float32)
    assert all(v.dtype == np.float32 for v in p.values())
    assert p.keys() == _sample().keys()


def test_check_structure_lists_every_difference() -> None:
    expected = _sample()
    actual: dict[str, np.ndarray] = {
        "0.w": np.ones((3, 2)),
        "0.b": np.zeros(2, np.float32),
        "extra": np.ones(1),
    }
    with pytest.raises(ParamsError) as info:
        P.check_structure(actual, expected, "grads")
    msg = str(info.value)
    assert msg.startswith("grads:")
    assert "missing keys ['2.w']" in msg
    assert "unexpected keys ['extra']" in msg
    assert "'0.w' has shape (3, 2), expected (2, 3)" in msg
    assert "'0.b' has dtype float32, expected float64" in msg
    P.check_structure(expected, expected)  # no error on a match


def test_allclose_detects_differences() -> None:
    p = _sample()
    assert P.allclose(p, p)
    assert not P.allclose(p, {**p, "0.b": np.ones(2)})
    assert not P.allclose(p, {"0.w": p["0.w"]})


@pytest.mark.parametrize(
    "call",
    [
        lambda bad: P.tree_add(bad, {"w": np.ones(3)}),
        lambda bad: P.tree_sub({"w": np.ones(3)}, bad),
        lambda bad: P.tree_scale(bad, 2.0),
        lambda bad: P.tree_map(np.negative, bad),
        P.zeros_like,
        lambda bad: P.cast(bad, np.float64),
        P.global_norm,
        P.num_params,
    ],
    ids=["tree_add", "tree_sub", "tree_scale", "tree_map", "zeros_like", "cast", "global_norm", "num_params"],
)
@pytest.mark.parametrize(
    "bad",
    [
        {"w": [1.0, 2.0, 3.0]},  # + would concatenate lists
        {"w": masked(np.ones(3))},
        {"w": matrix(np.ones(3))},
        [("w", np.ones(3))],
        None,
    ],
    ids=["list", "masked", "matrix", "pairs", "none"],
)
def test_the_tree_helpers_refuse_what_is_not_a_mapping_of_plain_arrays(call: Any, bad: Any) -> None:
    with pytest.raises(ParamsError):
        call(bad)


def test_tree_add_and_sub_refuse_shapes_that_would_broadcast() -> None:
    with pytest.raises(
        ShapeError, match=r"^tree_add: 'w' has shape \(3,\) in the first, \(1,\) in the second"
    ):
        P.tree_add({"w": np.ones(3)}, {"w": np.ones(1)})
    with pytest.raises(ShapeError, match=r"^tree_sub: "):
        P.tree_sub({"w": np.ones((2, 1))}, {"w": np.ones((1, 2))})


def test_tree_scale_and_cast_check_their_other_argument() -> None:
    with pytest.raises(ParamsError, match=r"^tree_scale: factor must be a real number, got '2'"):
        P.tree_scale({"w": np.ones(3)}, "2")  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match=r"^cast: dtype must be a floating dtype"):
        P.cast({"w": np.ones(3)}, np.int32)
    with pytest.raises(DTypeError, match=r"^cast: dtype must be a NumPy floating dtype"):
        P.cast({"w": np.ones(3)}, "no such dtype")
