"""The multi-input/multi-output contract: tuples through the checkers, the combinators and inspection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl._flow import add_flows, leaf_at, leaf_name, leaves, map_leaves, replace_leaf
from functional_dl.combinators import fan_out, parallel
from functional_dl.errors import ShapeError
from functional_dl.testing import check_gradients, check_purity
from functional_dl.testing import strategies as fst
from tests.layers.multi_io import PairInput, backward_flow, forward_flow, gated_scale, init_flow


def _inputs(batch: int, n: int, seed: int, *, with_h: bool = True) -> tuple[Any, ...]:
    keys = fdl.random.split(fdl.random.key(seed), 3)
    x = fdl.random.normal(keys[0], (batch, n), np.float64)
    h = fdl.random.normal(keys[1], (batch, n), np.float64) if with_h else None
    mask = fdl.random.uniform(keys[2], (batch, n), np.float64) < 0.7
    return x, h, mask


def test_leaves_paths_and_names() -> None:
    a, b = np.zeros(1), np.ones(2)
    flow = (a, (None, b))
    assert [(p, v is None) for p, v in leaves(flow)] == [((0,), False), ((1, 0), True), ((1, 1), False)]
    assert leaf_at(flow, (1, 1)) is b
    assert leaf_name((1, 0)) == "x[1][0]" and leaf_name(()) == "x"
    with pytest.raises(ShapeError, match=r"^x\[0\]\[0\]: no entry here"):
        leaf_at(flow, (0, 0))


def test_map_and_replace_keep_named_tuples_and_leave_the_original() -> None:
    record = PairInput(np.zeros(2), None, np.ones(2, bool))
    doubled = map_leaves(lambda _, v: None if v is None else v * 2, record)
    assert isinstance(doubled, PairInput)
    replaced = replace_leaf(record, (0,), np.ones(2))
    assert isinstance(replaced, PairInput)
    assert isinstance(replaced, tuple) and isinstance(replaced[0], np.ndarray)
    assert record.x.tolist() == [0.0, 0.0] and replaced[0].tolist() == [1.0, 1.0]


def test_add_flows_counts_none_as_zero() -> None:
    a, b = np.array([1.0]), np.array([2.0])
    total = add_flows((a, None, None), (b, a, None))
    assert isinstance(total, tuple)
    assert total[0].tolist() == [3.0] and total[1] is a and total[2] is None  # type: ignore[union-attr]
    with pytest.raises(ShapeError, match=r"^fan_out: .* different structure"):
        add_flows((a,), a)


@given(batch=st.integers(1, 3), n=st.integers(1, 4), seed=st.integers(0, 2**16), with_h=st.booleans())
def test_check_gradients_checks_every_float_input(batch: int, n: int, seed: int, with_h: bool) -> None:
    layer = gated_scale()
    _, params = init_flow(layer, fdl.random.key(seed), ((None, n), (None, n), (None, n)))
    x = _inputs(batch, n, seed, with_h=with_h)
    report = check_gradients(layer, params, x)
    assert report.passed, report.describe()
    assert report.checked == batch * n * (2 if with_h else 1) + n
    # The same through a named input record.
    assert check_gradients(layer, params, PairInput(*x)).checked == report.checked


def test_check_gradients_names_the_input_with_a_wrong_gradient() -> None:
    layer = gated_scale()
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3), (None, 3), (None, 3)))
    x = _inputs(2, 3, 1)
    y, cache = forward_flow(layer, params, x)

    def halve_dh(p: fdl.Params, c: Any, dy: Any, /) -> tuple[Any, fdl.Params]:
        (dx, dh, dmask), g = backward_flow(layer, p, c, dy)
        return (dx, dh * 0.5, dmask), g

    report = check_gradients(layer._replace(backward=halve_dh), params, x, raise_on_failure=False)
    assert not report.passed and report.worst == "x[1]"
    assert cache.has_h and len(y) == 2


def test_a_gradient_for_a_boolean_input_is_refused() -> None:
    layer = gated_scale(leak_mask_gradient=True)
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3), (None, 3), (None, 3)))
    with pytest.raises(AssertionError, match=r"x\[2\] .*must be None"):
        check_gradients(layer, params, _inputs(2, 3, 1))


def test_no_gradient_for_a_float_input_is_refused() -> None:
    layer = gated_scale()
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3), (None, 3), (None, 3)))

    def drop_dx(p: fdl.Params, c: Any, dy: Any, /) -> tuple[Any, fdl.Params]:
        (_, dh, dmask), g = backward_flow(layer, p, c, dy)
        return (None, dh, dmask), g

    with pytest.raises(AssertionError, match=r"x\[0\] is NoneType"):
        check_gradients(layer._replace(backward=drop_dx), params, _inputs(2, 3, 1))


def test_a_none_cotangent_is_a_zero_cotangent() -> None:
    layer = gated_scale()
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3), (None, 3), (None, 3)))
    (y, s), cache = forward_flow(layer, params, _inputs(2, 3, 4))
    dy = fdl.random.normal(fdl.random.key(5), y.shape, np.float64)
    with_none, g_none = backward_flow(layer, params, cache, (dy, None))
    with_zeros, g_zeros = backward_flow(layer, params, cache, (dy, np.zeros_like(s)))
    for a, b in zip(with_none, with_zeros, strict=True):
        assert (a is None and b is None) or a.tobytes() == b.tobytes()
    assert g_none["w"].tobytes() == g_zeros["w"].tobytes()


def test_check_purity_covers_every_input() -> None:
    layer = gated_scale()
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3), (None, 3), (None, 3)))
    x = _inputs(2, 3, 1)
    check_purity(layer, params, x)

    def scribble(p: fdl.Params, inputs: Any, ctx: fdl.Context = fdl.EVAL, /) -> tuple[Any, Any]:
        inputs[2][...] = True  # mutates the mask (the same way each call)
        return forward_flow(layer, p, inputs, ctx)

    with pytest.raises(AssertionError, match="input was modified"):
        check_purity(layer._replace(forward=scribble), params, x)


def _through_combinators() -> fdl.Layer[Any]:
    """``(x, h, mask)`` copied to two gated_scale branches; their outputs' ``y`` go through dense."""
    return fdl.serial(
        fan_out(2),
        parallel(gated_scale(), gated_scale()),
        parallel(parallel(L.dense(2), L.identity()), parallel(L.tanh(), L.identity())),
    )


@given(batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_serial_fan_out_and_parallel_route_tuples(batch: int, seed: int) -> None:
    net = _through_combinators()
    out_shape, params = init_flow(net, fdl.random.key(seed), ((None, 3), (None, 3), (None, 3)))
    assert out_shape == (((None, 2), (None,)), ((None, 3), (None,)))
    assert sorted(params) == ["1.0.w", "1.1.w", "2.0.0.b", "2.0.0.w"]
    x = _inputs(batch, 3, seed)
    params64 = fdl.params.cast(params, np.float64)
    report = check_gradients(net, params64, x)
    assert report.passed, report.describe()
    # fan_out summed the two branches' input gradients; the mask's stayed None.
    _, cache = forward_flow(net, params64, x)
    r = fdl.random.normal(fdl.random.key(1), (batch, 2), np.float64)
    zero, none_s = np.zeros((batch, 3)), np.zeros(batch)
    dx, _ = backward_flow(net, params64, cache, ((r, none_s), (zero, none_s)))
    assert dx[2] is None and dx[0].shape == (batch, 3)
    check_purity(net, params64, x)


def test_inspection_walks_tuples() -> None:
    net = _through_combinators()
    shape = ((None, 3), (None, 3), (None, 3))
    table = str(fdl.inspect.summary(net, shape))  # type: ignore[arg-type]
    assert "gated_scale" in table and "((batch, 2), (batch,))" in table
    _, params = init_flow(net, fdl.random.key(0), shape)
    x = tuple(a if a is None or a.dtype == bool else a.astype(np.float32) for a in _inputs(2, 3, 0))
    acts: dict[str, object] = dict(fdl.inspect.activations(net, params, x))  # type: ignore[arg-type]
    branch = acts["1.0"]
    assert isinstance(branch, tuple) and branch[0].shape == (2, 3)
    # debug's finiteness checks skip the boolean mask and the None entries.
    y, _ = forward_flow(fdl.inspect.debug(net), params, x)
    assert len(y) == 2


@given(fst.keys())
def test_a_single_array_still_means_one_input(key: fdl.Key) -> None:
    layer = L.dense(2)
    _, params = layer.init(key, (None, 3))
    assert check_gradients(layer, params, [[1.0, 2.0, 3.0]]).checked == 3 + 8
