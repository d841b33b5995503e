from __future__ import annotations

import pickle
from functools import partial
from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import inspect, losses, optim, train
from functional_dl import layers as L
from functional_dl.errors import LayerError
from functional_dl.layers.elementwise import elementwise
from functional_dl.params import prefix, strip_prefix
from functional_dl.testing import assert_bitwise_equal
from functional_dl.types import EVAL, Array, Buffers, Child, Context, Key, Layer, Params, Shape


def _explode_value(x: Array, /) -> Array:
    out: Array = np.where(x > 0, np.inf, x).astype(x.dtype)
    return out


def _nan_grad(x: Array, y: Array, dy: Array, /) -> Array:
    out: Array = dy * np.nan
    return out


def _pass_grad(x: Array, y: Array, dy: Array, /) -> Array:
    return dy


def _net() -> Layer[Any]:
    return fdl.serial(L.dense(5), fdl.serial(L.tanh(), L.dense(4)), L.relu(), L.dense(2))


def _setup(dtype: Any = np.float64) -> tuple[Layer[Any], Params, np.ndarray, np.ndarray]:
    net = _net()
    _, params = net.init(fdl.random.key(0), (None, 3))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)).astype(dtype)
    y = rng.standard_normal((6, 2)).astype(dtype)
    return net, fdl.params.cast(params, dtype), x, y


def test_activations_by_path() -> None:
    net, params, x, _ = _setup()
    acts = inspect.activations(net, params, x)
    assert list(acts) == ["0", "1.0", "1.1", "1", "2", "3"]
    h0, _ = L.dense(5).forward(strip_prefix(params, "0"), x)
    np.testing.assert_array_equal(acts["0"], h0)
    np.testing.assert_array_equal(acts["1.0"], np.tanh(h0))
    np.testing.assert_array_equal(acts["1"], acts["1.1"])
    np.testing.assert_array_equal(acts["3"], net.forward(params, x)[0])


def test_record_gradients_at_each_layer() -> None:
    net, params, x, y = _setup()
    t = inspect.record(net, losses.mean_squared_error, params, x, y)
    plain = train.value_and_grad(net, losses.mean_squared_error)(params, x, y)
    assert t.loss == plain.loss
    assert_bitwise_equal(t.grads, plain.grads, "grads")
    assert t.output_grads.keys() == t.activations.keys()
    _, dpred = losses.mean_squared_error(t.activations["3"], y)
    np.testing.assert_array_equal(t.output_grads["3"], dpred)
    # The gradient at layer 0's output is what the rest of the network back-propagates to it.
    rest = fdl.serial(L.tanh(), L.dense(4), L.relu(), L.dense(2))
    rest_params = {
        **prefix(strip_prefix(params, "1.1"), "1"),
        **prefix(strip_prefix(params, "3"), "3"),
    }
    out, cache = rest.forward(rest_params, t.activations["0"])
    _, dout = losses.mean_squared_error(out, y)
    d_h0, _ = rest.backward(rest_params, cache, dout)
    np.testing.assert_allclose(t.output_grads["0"], d_h0, rtol=1e-12, atol=1e-15)


def test_instrumented_copy_computes_the_same_with_state_and_keys() -> None:
    parts: list[Layer[Any]] = [L.dense(6)]
    if hasattr(L, "batch_norm1d"):
        parts.append(L.batch_norm1d())
    if hasattr(L, "dropout"):
        parts.append(L.dropout(0.3))
    net = fdl.serial(*parts, L.dense(2))
    _, params, state = net.init_with_buffers(fdl.random.key(1), (None, 3))
    x = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    y = np.zeros((8, 2), np.float32)
    ctx = Context(train=True, key=fdl.random.key(2), buffers=state)
    plain = train.value_and_grad(net, losses.mean_squared_error)(params, x, y, ctx)
    seen = inspect.record(net, losses.mean_squared_error, params, x, y, ctx=ctx)
    debugged = train.value_and_grad(inspect.debug(net), losses.mean_squared_error)(params, x, y, ctx)
    assert debugged.loss == plain.loss == seen.loss
    assert_bitwise_equal(debugged.grads, plain.grads, "grads")
    assert_bitwise_equal(debugged.buffers, plain.buffers, "state")
    np.testing.assert_array_equal(debugged.pred, plain.pred)
    assert_bitwise_equal(seen.grads, plain.grads, "grads")


def test_layer_stats_norms_and_update_ratio() -> None:
    net, params, x, y = _setup()
    grads = train.value_and_grad(net, losses.mean_squared_error)(params, x, y).grads
    opt = optim.sgd(0.1)
    _, new_params = opt.update(opt.init(params), grads)
    rows = inspect.layer_stats(params, grads, new_params)
    assert [r.path for r in rows] == ["0", "1.1", "3"]
    for r in rows:
        keys = [k for k in params if k.rpartition(".")[0] == r.path]
        g = np.concatenate([grads[k].ravel() for k in keys])
        p = np.concatenate([params[k].ravel() for k in keys])
        assert r.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-12)
        assert r.param_norm == pytest.approx(np.linalg.norm(p), rel=1e-12)
        assert r.update_ratio == pytest.approx(0.1 * np.linalg.norm(g) / np.linalg.norm(p), rel=1e-9)
        assert r.n_params == p.size
    table = inspect.format_stats(rows)
    assert table.splitlines()[0].split() == ["layer", "params", "|param|", "|grad|", "|update|/|param|"]
    assert len(table.splitlines()) == 5
    assert inspect.layer_stats(params, grads)[0].update_ratio is None


def test_summary_lists_paths_shapes_and_counts() -> None:
    net = _net()
    s = inspect.summary(net, (None, 3))
    assert [(r.path, r.name, r.out_shape, r.n_params, r.depth) for r in s.rows] == [
        ("", "serial", (None, 2), 20 + 24 + 10, 0),
        ("0", "dense", (None, 5), 20, 1),
        ("1", "serial", (None, 4), 24, 1),
        ("1.0", "tanh", (None, 5), 0, 2),
        ("1.1", "dense", (None, 4), 24, 2),
        ("2", "relu", (None, 4), 0, 1),
        ("3", "dense", (None, 2), 10, 1),
    ]
    _, params = net.init(fdl.random.key(0), (None, 3))
    assert s.total_params == fdl.params.num_params(params)
    text = str(s)
    assert "  1.1" in text
    assert text.endswith(f"total params: {s.total_params}")


def test_debug_names_the_first_layer_producing_nan_or_inf() -> None:
    explode = elementwise("explode", _explode_value, _pass_grad)
    net = fdl.serial(L.dense(3), fdl.serial(L.relu(), explode), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 4))
    x = np.ones((2, 4), np.float32)
    debug_net = pickle.loads(pickle.dumps(inspect.debug(net)))
    with pytest.raises(
        inspect.NonFiniteError, match=r"^1\.1\.explode: output contains NaN or Inf \(its input"
    ):
        debug_net.forward(params, x)
    x_bad = x.copy()
    x_bad[0, 0] = np.nan
    with pytest.raises(inspect.NonFiniteError, match=r"^0\.dense: .*its input already did"):
        debug_net.forward(params, x_bad)
    bad_grad = elementwise("bad_grad", _pass_grad_value, _nan_grad)
    net2 = fdl.serial(L.dense(3), bad_grad, L.dense(1))
    _, params2 = net2.init(fdl.random.key(0), (None, 4))
    y, cache = inspect.debug(net2).forward(params2, x)
    with pytest.raises(inspect.NonFiniteError, match=r"^1\.bad_grad: backward produced NaN"):
        inspect.debug(net2).backward(params2, cache, np.ones_like(y))


def _pass_grad_value(x: Array, /) -> Array:
    return x


# A user's own combinator that names its child (keys "<name>.<key>"), written without the library's.
def _named_init(
    key: Key, in_shape: Shape, /, *, name: str, child: Layer[Any]
) -> tuple[Shape, Params, Buffers]:
    out, params, state = child.init_with_buffers(key, in_shape)
    return out, prefix(params, name), prefix(state, name)


def _named_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, name: str, child: Layer[Any]
) -> tuple[Array, object]:
    return child.forward(strip_prefix(params, name), x, ctx)


def _named_backward(
    params: Params, cache: object, dy: Array, /, *, name: str, child: Layer[Any]
) -> tuple[Array, Params]:
    dx, grads = child.backward(strip_prefix(params, name), cache, dy)
    return dx, prefix(grads, name)


def _named_buffers_of(cache: object, /, *, name: str, child: Layer[Any]) -> Buffers:
    return prefix(child.buffers_of(cache), name)


def _user_named_layer(name: str, child: Layer[Any], *, as_data: bool) -> Layer[Any]:
    return Layer(
        partial(_named_init, name=name, child=child),
        partial(_named_forward, name=name, child=child),
        partial(_named_backward, name=name, child=child),
        partial(_named_buffers_of, name=name, child=child),
        "user_named",
        children=(Child(name, child),) if as_data else (),
        rebuild=partial(_user_named_rebuild, name) if as_data else None,
    )


def user_named(name: str, child: Layer[Any]) -> Layer[Any]:
    """The user's combinator following the children contract."""
    return _user_named_layer(name, child, as_data=True)


def _user_named_rebuild(name: str, layers: tuple[Layer[Any], ...], /) -> Layer[Any]:
    return user_named(name, layers[0])


def test_a_user_combinator_with_children_is_walked() -> None:
    net = fdl.serial(user_named("encoder", fdl.serial(L.dense(3), L.relu())), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 2))
    assert sorted(params) == ["0.encoder.0.b", "0.encoder.0.w", "1.b", "1.w"]
    x = np.ones((2, 2), np.float32)
    acts = inspect.activations(net, params, x)
    assert list(acts) == ["0.encoder.0", "0.encoder.1", "0.encoder", "0", "1"]
    np.testing.assert_array_equal(acts["1"], net.forward(params, x)[0])
    rows = inspect.summary(net, (None, 2)).rows
    assert [(r.path, r.name) for r in rows] == [
        ("", "serial"),
        ("0", "user_named"),
        ("0.encoder", "serial"),
        ("0.encoder.0", "dense"),
        ("0.encoder.1", "relu"),
        ("1", "dense"),
    ]
    # The instrumented copy pickles: the user's rebuild is a partial of a module-level function.
    debugged = pickle.loads(pickle.dumps(inspect.debug(net)))
    np.testing.assert_array_equal(debugged.forward(params, x)[0], net.forward(params, x)[0])


def test_a_user_combinator_without_children_is_a_leaf() -> None:
    inner = fdl.serial(L.dense(3), L.relu())
    net = fdl.serial(_user_named_layer("encoder", inner, as_data=False), L.dense(1))
    assert net.children[0].layer.children == ()
    rows = inspect.summary(net, (None, 2)).rows
    assert [(r.path, r.name, r.n_params) for r in rows] == [
        ("", "serial", 13),
        ("0", "user_named", 9),
        ("1", "dense", 4),
    ]
    _, params = net.init(fdl.random.key(0), (None, 2))
    assert list(inspect.activations(net, params, np.ones((2, 2), np.float32))) == ["0", "1"]


def test_children_without_rebuild_is_refused_naming_the_layer() -> None:
    broken = fdl.serial(L.dense(2))._replace(rebuild=None, name="broken")
    with pytest.raises(LayerError, match=r"^broken: has children but no rebuild"):
        inspect.summary(fdl.serial(broken), (None, 2))


def test_an_instrumented_network_keeps_its_children() -> None:
    net = _net()
    tapped = inspect.debug(net)
    assert [c.segment for c in tapped.children] == [c.segment for c in net.children]
    assert [c.layer.name for c in tapped.children] == [c.layer.name for c in net.children]
    assert [r.path for r in inspect.summary(tapped, (None, 3)).rows] == [
        r.path for r in inspect.summary(net, (None, 3)).rows
    ]


def _branchy() -> Layer[Any]:
    from functional_dl import combinators as C

    return fdl.serial(
        L.dense(4),
        C.residual(fdl.serial(L.dense(4), L.tanh())),
        C.fan_out(2),
        C.parallel(L.dense(3), fdl.serial(L.dense(3), L.relu())),
        C.fan_in_sum(),
        C.named("head", L.dense(1)),
    )


def test_every_combinator_is_walked_and_computes_the_same() -> None:
    pytest.importorskip("functional_dl.combinators.branches")
    net = _branchy()
    _, params = net.init(fdl.random.key(0), (None, 2))
    x = np.random.default_rng(0).standard_normal((5, 2))
    params = fdl.params.cast(params, np.float64)
    y = np.zeros((5, 1))
    t = inspect.record(net, losses.mean_squared_error, params, x, y)
    plain = train.value_and_grad(net, losses.mean_squared_error)(params, x, y)
    assert t.loss == plain.loss
    assert_bitwise_equal(t.grads, plain.grads, "grads")
    assert list(t.activations) == [
        "0",
        "1.0",
        "1.1",
        "1/serial",
        "1",
        "2",
        "3.0",
        "3.1.0",
        "3.1.1",
        "3.1",
        "3",
        "4",
        "5.head",
        "5",
    ]
    np.testing.assert_array_equal(t.activations["1"], t.activations["0"] + t.activations["1/serial"])
    np.testing.assert_array_equal(t.activations["5"], plain.pred)
    rows = inspect.summary(net, (None, 2)).rows
    assert [r.path for r in rows] == [
        "",
        "0",
        "1",
        "1/serial",
        "1.0",
        "1.1",
        "2",
        "3",
        "3.0",
        "3.1",
        "3.1.0",
        "3.1.1",
        "4",
        "5",
        "5.head",
    ]
    by_path = {r.path: r for r in rows}
    branch_shapes: object = by_path["3"].out_shape
    assert branch_shapes == ((None, 3), (None, 3))
    assert by_path["1"].n_params == by_path["1/serial"].n_params == 20
    assert "((batch, 3), (batch, 3))" in str(inspect.summary(net, (None, 2)))
    assert {r.path for r in inspect.layer_stats(params, plain.grads)} == {
        "0",
        "1.0",
        "3.0",
        "3.1.0",
        "5.head",
    }
    out, _ = inspect.debug(net).forward(params, x)
    np.testing.assert_array_equal(out, plain.pred)
