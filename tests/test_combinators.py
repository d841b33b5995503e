"""Combinators: parameter keys (golden), key splitting, context flow, error paths, branch checks.

Finite differences, purity, dtypes and pickling of nested networks run through the layer
registry (``tests/layers/cases.py``, built from ``tests/layers/nets.py``); PyTorch comparisons of
the same networks in ``tests/layers/test_torch.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.combinators import fan_in_concat, fan_in_sum, fan_out, named, parallel, residual
from functional_dl.errors import ArgumentError, DomainError, DTypeError, ParamsError, ShapeError
from tests.layers import nets


def _golden_net() -> fdl.Layer[Any]:
    return fdl.serial(
        encoder=fdl.serial(L.dense(8), L.relu(), L.dense(4)),
        block=residual(fdl.serial(L.dense(4), L.batch_norm1d(), L.tanh())),
        heads=fdl.serial(
            fan_out(2), parallel(L.dense(3), fdl.serial(L.dense(2), L.relu())), fan_in_concat(-1)
        ),
        out=named("logits", L.dense(1)),
    )


def test_parameter_and_state_keys_golden() -> None:
    out_shape, params, state = _golden_net().init_with_buffers(fdl.random.key(0), (None, 5))
    assert out_shape == (None, 1)
    assert list(params) == [
        "encoder.0.w",
        "encoder.0.b",
        "encoder.2.w",
        "encoder.2.b",
        "block.0.w",
        "block.0.b",
        "block.1.scale",
        "block.1.bias",
        "heads.1.0.w",
        "heads.1.0.b",
        "heads.1.1.0.w",
        "heads.1.1.0.b",
        "out.logits.w",
        "out.logits.b",
    ]
    assert list(state) == ["block.1.running_mean", "block.1.running_var"]
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes["encoder.0.w"] == (8, 5)
    assert shapes["heads.1.1.0.w"] == (2, 4)
    assert shapes["out.logits.w"] == (1, 5)


def test_grads_have_the_keys_of_params_and_state_of_the_keys_of_state() -> None:
    net = _golden_net()
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 5))
    x = fdl.random.normal(fdl.random.key(1), (4, 5), np.float32)
    y, cache = net.forward(params, x, fdl.Context(train=True, buffers=state))
    dx, grads = net.backward(params, cache, np.ones_like(y))
    assert list(grads) == list(params)
    assert net.buffers_of(cache).keys() == state.keys()
    assert dx.shape == x.shape


def test_a_childs_params_do_not_depend_on_what_else_is_in_the_network() -> None:
    key = fdl.random.key(3)
    _, small = fdl.serial(L.dense(4), L.relu()).init(key, (None, 3))
    _, big = fdl.serial(L.dense(4), L.relu(), L.dense(7), residual(L.dense(7))).init(key, (None, 3))
    assert np.array_equal(small["0.w"], big["0.w"])
    _, by_name = fdl.serial(a=L.dense(4), b=L.relu()).init(key, (None, 3))
    assert np.array_equal(by_name["a.w"], small["0.w"])
    _, twice = fdl.serial(L.dense(4), L.dense(4)).init(key, (None, 4))
    assert not np.array_equal(twice["0.w"], twice["1.w"])  # one key per child, never reused


def test_init_is_deterministic() -> None:
    a = _golden_net().init(fdl.random.key(9), (None, 5))[1]
    b = _golden_net().init(fdl.random.key(9), (None, 5))[1]
    assert fdl.params.allclose(a, b, rtol=0)


def test_each_dropout_gets_its_own_key_through_every_combinator() -> None:
    net = fdl.serial(fan_out(3), parallel(L.dropout(0.5), L.dropout(0.5), residual(L.dropout(0.5))))
    x = np.ones((4, 64), np.float64)
    ys, _ = net.forward({}, x, fdl.Context(train=True, key=fdl.random.key(0)))
    masks = [ys[0] != 0, ys[1] != 0, ys[2] != 1]  # residual: x + dropout(x) is 1 where dropped
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    again, _ = net.forward({}, x, fdl.Context(train=True, key=fdl.random.key(0)))
    assert all(np.array_equal(a, b) for a, b in zip(ys, again, strict=True))
    evaluated, _ = net.forward({}, x)
    assert all(np.array_equal(y, x) for y in evaluated[:2])


def test_training_flag_and_state_reach_batch_norm_inside_named_and_residual() -> None:
    net = nets.train_everything()
    _, params, state = net.init_with_buffers(fdl.random.key(0), (None, 3))
    x = fdl.random.normal(fdl.random.key(1), (6, 3), np.float32) + 2.0
    _, cache = net.forward(params, x, fdl.Context(train=True, key=fdl.random.key(2), buffers=state))
    new = net.buffers_of(cache)
    assert new.keys() == state.keys()
    for k in new:
        assert not np.array_equal(new[k], state[k]), k  # every batch norm saw training mode
    _, cache = net.forward(params, x, fdl.Context(buffers=new))
    assert all(net.buffers_of(cache)[k] is new[k] for k in new)  # evaluation leaves state alone


def test_shape_error_deep_inside_names_path_expected_and_actual() -> None:
    net = fdl.serial(encoder=fdl.serial(L.dense(4), L.relu(), L.dense(3)), decoder=L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 5))
    bad = {**params, "encoder.2.w": np.zeros((3, 6), np.float32)}
    with pytest.raises(
        ShapeError, match=r"^encoder\.2\.dense: expected input of shape \(batch, 6\), got \(2, 4\)$"
    ):
        net.forward(bad, np.ones((2, 5), np.float32))
    with pytest.raises(
        ShapeError, match=r"^encoder\.0\.dense: expected input of shape \(batch, 5\), got \(2, 7\)$"
    ):
        net.forward(params, np.ones((2, 7), np.float32))


def test_errors_inside_parallel_named_and_residual_name_the_path() -> None:
    net = fdl.serial(L.dense(4), fdl.serial(fan_out(2), parallel(L.dense(2), named("side", L.dense(3)))))
    _, params = net.init(fdl.random.key(0), (None, 3))
    bad = {**params, "1.1.1.side.w": np.zeros((3, 9), np.float32)}
    with pytest.raises(
        ShapeError, match=r"^1\.1\.1\.side\.dense: expected input of shape \(batch, 9\), got \(2, 4\)"
    ):
        net.forward(bad, np.ones((2, 3), np.float32))
    with pytest.raises(
        ShapeError, match=r"^2\.residual: the wrapped dense maps \(batch, 4\) to \(batch, 3\)"
    ):
        fdl.serial(L.dense(4), L.relu(), residual(L.dense(3))).init(fdl.random.key(0), (None, 2))


def test_backward_errors_name_the_path() -> None:
    net = fdl.serial(L.dense(4), fdl.serial(L.relu(), L.dense(2)))
    _, params = net.init(fdl.random.key(0), (None, 3))
    _, cache = net.forward(params, np.ones((2, 3), np.float32))
    with pytest.raises(ShapeError, match=r"^1\.1\.dense: expected dy of shape \(2, 2\), got \(2, 5\)"):
        net.backward(params, cache, np.ones((2, 5), np.float32))


def test_unknown_and_missing_keys() -> None:
    net = fdl.serial(encoder=L.dense(2), decoder=L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 3))
    with pytest.raises(
        ParamsError, match=r"^serial: unexpected key 'head\.w': this network's children are encoder, decoder"
    ):
        net.forward({**params, "head.w": np.ones((1, 2), np.float32)}, np.ones((1, 3), np.float32))
    missing = {k: v for k, v in params.items() if k != "decoder.b"}
    with pytest.raises(ParamsError, match=r"^decoder\.dense: parameter keys do not match: missing \['b'\]"):
        net.forward(missing, np.ones((1, 3), np.float32))


def test_branch_shape_checks() -> None:
    with pytest.raises(
        ShapeError, match=r"fan_in_sum: branch 1 has shape \(batch, 3\), expected \(batch, 2\)"
    ):
        fdl.serial(fan_out(2), parallel(L.dense(2), L.dense(3)), fan_in_sum()).init(
            fdl.random.key(0), (None, 4)
        )
    with pytest.raises(ShapeError, match=r"^parallel: expected a tuple of 2 inputs, one per branch"):
        parallel(L.relu(), L.relu()).forward({}, np.ones((2, 2)))
    mismatched = fdl.serial(fan_out(2), parallel(L.identity(), L.dense(2)), fan_in_concat(1))
    with pytest.raises(
        ShapeError, match=r"^2\.fan_in_concat: branch 1 has shape \(batch, 2\), expected \(batch, 4\)"
    ):
        mismatched.init(fdl.random.key(0), (None, 3, 4))
    ok, _ = fdl.serial(fan_out(2), fan_in_concat(1)).forward({}, np.ones((2, 2)))
    assert ok.shape == (2, 4)
    with pytest.raises(DomainError, match="fan_in_concat: axis must be a non-batch axis"):
        fan_in_concat(0)


def test_fan_in_concat_on_channels_and_its_gradient_split() -> None:
    net = fdl.serial(fan_out(2), parallel(L.identity(), L.tanh()), fan_in_concat(1))
    x = fdl.random.normal(fdl.random.key(0), (2, 3, 4), np.float64)
    out_shape, _ = net.init(fdl.random.key(0), (None, 3, 4))
    y, cache = net.forward({}, x)
    assert out_shape == (None, 6, 4) and y.shape == (2, 6, 4)
    dx, _ = net.backward({}, cache, np.ones_like(y))
    np.testing.assert_allclose(dx, 1 + (1 - np.tanh(x) ** 2), rtol=1e-15)


def test_construction_errors() -> None:
    with pytest.raises(ArgumentError, match="all positionally or all by name"):
        fdl.serial(L.relu(), head=L.relu())
    with pytest.raises(
        ArgumentError, match=r"^serial: argument 1 is a function, not a Layer \(did you write L\.relu instead"
    ):
        fdl.serial(L.relu(), L.relu)  # type: ignore[arg-type]
    with pytest.raises(DomainError, match=r"contain no '\.'"):
        fdl.serial(**{"a.b": L.relu()})
    with pytest.raises(DomainError, match="named: name must be"):
        named("", L.relu())
    with pytest.raises(DomainError, match="fan_out: n must be"):
        fan_out(0)


def test_inspection_sees_named_children_by_their_keys() -> None:
    from functional_dl import inspect

    text = str(inspect.summary(_golden_net(), (None, 5)))
    for path in ("encoder.0", "block.1", "heads.1.1.0", "out.logits"):
        assert path in text, path


def test_top_level_namespace() -> None:
    for name in ("serial", "parallel", "fan_out", "fan_in_sum", "fan_in_concat", "residual", "named"):
        assert getattr(fdl.combinators, name).__doc__


def _walk(layer: fdl.Layer[Any], path: str = "") -> list[tuple[str, str]]:
    """``(path, kind)`` of every layer, read from ``children`` alone."""
    rows = [(path, layer.name)]
    for child in layer.children:
        rows += _walk(child.layer, ".".join(p for p in (path, child.segment) if p) or path)
    return rows


def test_children_are_data_with_their_key_segments() -> None:
    net = _golden_net()
    assert [c.segment for c in net.children] == ["encoder", "block", "heads", "out"]
    assert _walk(net) == [
        ("", "serial"),
        ("encoder", "serial"),
        ("encoder.0", "dense"),
        ("encoder.1", "relu"),
        ("encoder.2", "dense"),
        ("block", "residual"),
        ("block", "serial"),  # residual's child keeps its keys: segment ""
        ("block.0", "dense"),
        ("block.1", "batch_norm1d"),
        ("block.2", "tanh"),
        ("heads", "serial"),
        ("heads.0", "fan_out"),
        ("heads.1", "parallel"),
        ("heads.1.0", "dense"),
        ("heads.1.1", "serial"),
        ("heads.1.1.0", "dense"),
        ("heads.1.1.1", "relu"),
        ("heads.2", "fan_in_concat"),
        ("out", "logits"),  # named(name, f) is called by its name
        ("out.logits", "dense"),
    ]
    # Every parameter key starts with the path of a leaf found by the walk.
    leaves = {p for p, kind in _walk(net) if kind in {"dense", "batch_norm1d"}}
    _, params = net.init(fdl.random.key(0), (None, 5))
    assert {k.rpartition(".")[0] for k in params} == leaves


def test_leaves_have_no_children_and_no_rebuild() -> None:
    for leaf in (L.dense(3), L.relu(), fan_out(2), fan_in_sum(), fan_in_concat(-1)):
        assert leaf.children == () and leaf.rebuild is None


def test_rebuild_over_new_children_builds_the_same_combinator() -> None:
    x = np.random.default_rng(0).standard_normal((3, 5))
    swapped = L.dense(4)  # a different child in place of one
    for net in (
        _golden_net(),
        fdl.serial(L.dense(4), L.relu()),
        residual(L.dense(5)),
        named("head", L.dense(4)),
        fdl.serial(fan_out(2), parallel(L.dense(4), L.dense(4)), fan_in_sum()),
    ):
        assert net.rebuild is not None
        same = net.rebuild(tuple(c.layer for c in net.children))
        assert same.name == net.name and same.children == net.children
        _, params, buffers = net.init_with_buffers(fdl.random.key(3), (None, 5))
        _, params2, buffers2 = same.init_with_buffers(fdl.random.key(3), (None, 5))
        fdl.testing.assert_bitwise_equal(params2, params, "params")
        fdl.testing.assert_bitwise_equal(buffers2, buffers, "buffers")
        params = fdl.params.cast(params, np.float64)
        ctx = fdl.Context(buffers=fdl.params.cast(buffers, np.float64))
        np.testing.assert_array_equal(same.forward(params, x, ctx)[0], net.forward(params, x, ctx)[0])
    rebuilt = fdl.serial(a=L.dense(2), b=L.relu())
    assert rebuilt.rebuild is not None
    other = rebuilt.rebuild((swapped, L.relu()))
    assert [c.segment for c in other.children] == ["a", "b"] and other.children[0].layer is swapped


def test_no_library_code_reads_partial_arguments() -> None:
    import pathlib

    root = pathlib.Path(fdl.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if any(pattern in line for pattern in (".args[", ".keywords", ".func(", ".func "))
    ]
    assert offenders == []


def test_serial_fast_paths_agree_bit_for_bit_with_the_plain_folds() -> None:
    from functional_dl.combinators.serial import backward_plain, forward_plain

    x = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    nets = (
        fdl.serial(L.dense(4), L.relu(), L.dense(3)),  # no child reads its context
        fdl.serial(L.dense(4), L.dropout(0.5), L.batch_norm1d(), L.dense(3)),
        _golden_net(),
    )
    for net in nets:
        _, params, buffers = net.init_with_buffers(fdl.random.key(0), (None, 5))
        for ctx in (
            fdl.Context(buffers=buffers),
            fdl.Context(train=True, key=fdl.random.key(7), buffers=buffers),
        ):
            children = tuple(c.layer for c in net.children)
            index = {c.segment: i for i, c in enumerate(net.children)}
            y, cache = net.forward(params, x, ctx)
            y_plain, cache_plain = forward_plain(children, index, params, x, ctx)
            np.testing.assert_array_equal(y, y_plain)
            fdl.testing.assert_bitwise_equal(net.buffers_of(cache), net.buffers_of(cache_plain), "buffers")
            dy = np.ones_like(y)
            dx_plain, grads_plain = backward_plain(children, index, params, cache_plain, dy)
            dx, grads = net.backward(params, cache, dy)
            np.testing.assert_array_equal(dx, dx_plain)
            fdl.testing.assert_bitwise_equal(grads, grads_plain, "grads")
            fdl.testing.assert_bitwise_equal(net.param_grads(params, cache, dy), grads_plain, "param_grads")


def _standardise(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    return out


def _argmax(y: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.argmax(y, axis=-1)
    return out


def test_bind_is_the_forward_as_a_picklable_function_that_composes() -> None:
    import pickle

    net = fdl.serial(L.dense(4), L.batch_norm1d(), L.relu(), L.dense(3))
    _, params, buffers = net.init_with_buffers(fdl.random.key(0), (None, 5))
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    ctx = fdl.Context(buffers=buffers)
    before = x.copy()
    predict = fdl.bind(net, params, ctx=ctx)
    y = predict(x)
    np.testing.assert_array_equal(y, net.forward(params, x, ctx)[0])
    np.testing.assert_array_equal(predict(x), y)  # repeated calls bit-identical
    np.testing.assert_array_equal(x, before)  # input untouched
    assert y.dtype == np.float32
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(predict))(x), y)
    expected = _argmax(net.forward(params, _standardise(x), ctx)[0])
    np.testing.assert_array_equal(fdl.pipe(x, _standardise, predict, _argmax), expected)
    np.testing.assert_array_equal(fdl.compose_left(_standardise, predict, _argmax)(x), expected)


def test_bind_refuses_what_is_not_a_network_params_or_context() -> None:
    net = fdl.serial(L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 3))
    with pytest.raises(ArgumentError, match="bind: net must be a Layer, got function"):
        fdl.bind(L.relu, params)  # type: ignore[arg-type]
    with pytest.raises(ParamsError, match=r"^serial: bind: params must be a mapping of arrays, got list"):
        fdl.bind(net, [params["0.w"]])  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="bind: ctx must be a Context, got bool"):
        fdl.bind(net, params, ctx=True)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"^0\.dense: "):
        fdl.bind(net, params)(np.ones((2, 4), np.float32))


def test_named_refuses_keys_outside_its_prefix_naming_them() -> None:
    net = fdl.serial(L.dense(3), named("head", L.dense(2)))
    _, params = net.init(fdl.random.key(0), (None, 4))
    stray = {**params, "1.other.w": np.ones((2, 3), np.float32)}
    with pytest.raises(
        ParamsError,
        match=r"^1\.head: unexpected params keys \['other\.w'\]: every key of this network starts",
    ):
        net.forward(stray, np.ones((2, 4), np.float32))


def test_one_dtype_rule_for_the_fan_ins_and_checked_gradients() -> None:
    x32 = np.ones((4, 5), np.float32)
    mixed: Any = (x32, x32.astype(np.float64))
    ints: Any = (np.ones((4, 5), np.int64), np.ones((4, 5), np.int64))
    pair: Any = (x32, x32)
    fan_ins: tuple[fdl.Layer[Any], ...] = (fan_in_sum(), fan_in_concat(-1))
    for fan_in in fan_ins:
        with pytest.raises(DTypeError, match=r"branch 1 has dtype float64, branch 0 has float32"):
            fan_in.forward({}, mixed)
        with pytest.raises(DTypeError, match=r"expected floating-point branches, branch 0 has dtype int64"):
            fan_in.forward({}, ints)
        _, cache = fan_in.forward({}, pair)
        with pytest.raises(ShapeError, match=r"expected dy of shape \(4, (5|10)\), got \(1, (5|10)\)"):
            fan_in.backward({}, cache, np.ones((1, 10 if fan_in.name == "fan_in_concat" else 5), np.float32))
    _, fan_out_cache = fan_out(2).forward({}, x32)
    broadcastable: Any = (np.ones((1, 5), np.float32), x32)  # once broadcast to (4, 5)
    with pytest.raises(
        ShapeError, match=r"^fan_out: expected branch 0's gradient of shape \(4, 5\), got \(1, 5\)"
    ):
        fan_out(2).backward({}, fan_out_cache, broadcastable)


def test_a_cache_of_another_length_is_a_params_error_in_serial_and_parallel() -> None:
    # Rule 3 of the layer checks: backward refuses a cache its forward did not make, the same way in both.
    x = np.ones((2, 3), np.float32)
    y, _ = fdl.serial(L.relu(), L.relu()).forward({}, x)
    _, short = fdl.serial(L.relu()).forward({}, x)
    with pytest.raises(ParamsError, match=r"^serial: cache has 1 entries, this network has 2 layers"):
        fdl.serial(L.relu(), L.relu()).backward({}, short, y)
    pair: Any = (x, x)
    ys, _ = parallel(L.relu(), L.relu()).forward({}, pair)
    _, one = parallel(L.relu()).forward({}, (x,))  # type: ignore[arg-type]  # a tuple input
    with pytest.raises(ParamsError, match=r"^parallel: cache has 1 entries, this network has 2 branches"):
        parallel(L.relu(), L.relu()).backward({}, one, ys)
