"""The sweep over every combinator: params, contexts, caches, gradients and branches wrong in one way.

Every combinator factory exported by ``fdl.combinators`` (and re-exported by ``fdl``) has a case
in :data:`CASES` (the test fails otherwise): a small network with the combinator at its top, drawn
in float32 or float64 with hypothesis-drawn batch and width. Each is given, one fault at a time,
what the combinator itself must check: params that are not a mapping, with a non-string key, a key
that names no child (or any key, for those that own none), a missing key; a ``ctx`` that is not a
``Context`` or carries a stray buffer; another combinator's cache or ``None``; a gradient of the
wrong shape (a ``(1, w)`` one where ``(b, w)`` belongs), dtype, or kind; branches of integers,
mixed dtypes, lists or mismatched shapes; a non-key; a malformed ``init`` shape; and, when it is
built, a non-Layer child or a bad argument. Every call must raise one of the library's errors
(a raw NumPy/Python exception, a warning, a silent acceptance or a mutated input fails), while
the same network with good inputs runs and keeps its dtype. What a *leaf* layer checks on its own
(its params' shapes, its ``x``) is swept with the layers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import combinators
from functional_dl import layers as L
from functional_dl.combinators import (
    FanInSumCache,
    ParallelCache,
    SerialCache,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    named,
    parallel,
    residual,
    tie,
)
from functional_dl.errors import LayerError
from tests.sweep import accepted, call, refused, snapshot, unchanged

SWEEP = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Arr = np.ndarray[Any, Any]

#: Every combinator factory exported by fdl.combinators.
PUBLIC = {
    name: getattr(combinators, name)
    for name in combinators.__all__
    if inspect.isfunction(getattr(combinators, name))
}


class Net(NamedTuple):
    """A network, its ``init`` shape and a good input."""

    layer: fdl.Layer[Any]
    in_shape: Any
    x: Any


class Case(NamedTuple):
    """One combinator at the top of a small network.

    Attributes:
        id: test id.
        factory: the public combinator it sweeps.
        make: ``(dtype, batch, width) -> Net``.
        routes_buffers: ``ctx.buffers`` are routed by this combinator (a stray key is its to refuse).
        branches_in: it takes a tuple of branches (its input faults are the fan-ins' or parallel's).
        fans_out: it returns a tuple of copies of its input (its gradients are fan_out's to check).
        owns_dy: it checks ``dy`` itself (a fan-in) rather than handing it to a child.
        own_keys: it routes its params' keys (else, as ``residual``, they are its child's own, and
            only their being a mapping is its to check).
    """

    id: str
    factory: Callable[..., object]
    make: Callable[[type, int, int], Net]
    routes_buffers: bool = False
    branches_in: bool = False
    fans_out: bool = False
    owns_dy: bool = False
    own_keys: bool = True


def _ones(dtype: type, batch: int, width: int) -> Arr:
    return np.linspace(-1.0, 1.0, batch * width).reshape(batch, width).astype(dtype)


def _serial(dtype: type, b: int, w: int) -> Net:
    return Net(fdl.serial(L.dense(w, dtype=dtype), L.tanh()), (None, w), _ones(dtype, b, w))


def _serial_named(dtype: type, b: int, w: int) -> Net:
    return Net(fdl.serial(enc=L.dense(w, dtype=dtype), act=L.tanh()), (None, w), _ones(dtype, b, w))


def _parallel(dtype: type, b: int, w: int) -> Net:
    x = (_ones(dtype, b, w), _ones(dtype, b, w + 1))
    return Net(parallel(L.dense(w, dtype=dtype), L.tanh()), ((None, w), (None, w + 1)), x)


def _residual(dtype: type, b: int, w: int) -> Net:
    return Net(residual(L.dense(w, dtype=dtype)), (None, w), _ones(dtype, b, w))


def _named(dtype: type, b: int, w: int) -> Net:
    return Net(named("enc", L.dense(w, dtype=dtype)), (None, w), _ones(dtype, b, w))


def _fan_out(dtype: type, b: int, w: int) -> Net:
    return Net(fan_out(2), (None, w), _ones(dtype, b, w))


def _fan_in_sum(dtype: type, b: int, w: int) -> Net:
    return Net(fan_in_sum(), ((None, w), (None, w)), (_ones(dtype, b, w), -_ones(dtype, b, w)))


def _fan_in_concat(dtype: type, b: int, w: int) -> Net:
    x = (_ones(dtype, b, w), _ones(dtype, b, w + 1))
    return Net(fan_in_concat(-1), ((None, w), (None, w + 1)), x)


def _tied(dtype: type, b: int, w: int) -> Net:
    net = fdl.serial(a=L.dense(w, dtype=dtype), act=L.tanh(), b=L.dense(w, dtype=dtype))
    return Net(tie(net, {"b.w": "a.w"}), (None, w), _ones(dtype, b, w))


def _bound(dtype: type, b: int, w: int) -> Net:
    return _serial(dtype, b, w)  # bind is swept by its own test; its network is a serial


CASES = [
    Case("serial", fdl.serial, _serial, routes_buffers=True),
    Case("serial_by_name", fdl.serial, _serial_named, routes_buffers=True),
    Case("parallel", parallel, _parallel, routes_buffers=True, branches_in=True),
    Case("residual", residual, _residual, own_keys=False),
    Case("named", named, _named, routes_buffers=True),
    Case("fan_out", fan_out, _fan_out, fans_out=True),
    Case("fan_in_sum", fan_in_sum, _fan_in_sum, branches_in=True, owns_dy=True),
    Case("fan_in_concat", fan_in_concat, _fan_in_concat, branches_in=True, owns_dy=True),
    Case("tie", tie, _tied),
    Case("bind", fdl.bind, _bound),
]
CASE = {c.id: c for c in CASES}


def test_every_combinator_has_a_case() -> None:
    assert sorted({name for name, f in PUBLIC.items() if f not in {c.factory for c in CASES}}) == []
    top = {name for name in fdl.__all__ if getattr(fdl, name) in PUBLIC.values()}
    assert top <= set(PUBLIC), "fdl re-exports a combinator that fdl.combinators does not list"


drawn = st.tuples(st.sampled_from([np.float32, np.float64]), st.integers(1, 4), st.integers(1, 4))


def _built(case: Case, dtype: type, b: int, w: int) -> tuple[Net, fdl.Params, Any, Any, Any]:
    """The network, its params, and a good forward: output, cache and an all-ones ``dy``."""
    net = case.make(dtype, b, w)
    _, params = accepted(lambda: net.layer.init(fdl.random.key(0), net.in_shape))
    y: Any
    y, cache = accepted(lambda: net.layer.forward(params, net.x))
    dy = tuple(np.ones_like(a) for a in y) if isinstance(y, tuple) else np.ones_like(y)
    return net, params, y, cache, dy


def _refused_unchanged(call: Callable[[], object], *inputs: object) -> Exception:
    before = snapshot(list(inputs))
    err = refused(call)
    unchanged(before, list(inputs))
    return err


def _bad_params(params: fdl.Params, like: Arr) -> dict[str, tuple[object, str | None]]:
    """Params wrong in one way, each with a word its error must contain."""
    int_key: dict[object, object] = {0: like}
    int_key.update(params)
    bad: dict[str, tuple[object, str | None]] = {
        "a list": (list(params.values()), "mapping"),
        "None": (None, "mapping"),
        "a non-string key": (int_key, "0"),
        "a key naming no child": ({**params, "zzz.w": like}, "zzz"),
        "a key without a dot": ({**params, "zzz": like}, "zzz"),
    }
    if params:
        first = next(iter(params))
        bad["a missing key"] = ({k: v for k, v in params.items() if k != first}, "missing")
    return bad


@pytest.mark.parametrize("case_id", [c.id for c in CASES if c.id != "bind"])
@SWEEP
@given(drawn=drawn)
def test_good_inputs_run_and_keep_the_dtype(case_id: str, drawn: tuple[type, int, int]) -> None:
    net, params, y, cache, dy = _built(CASE[case_id], *drawn)
    dx: Any
    dx, grads = accepted(lambda: net.layer.backward(params, cache, dy))
    outs = y if isinstance(y, tuple) else (y,)
    dxs = dx if isinstance(dx, tuple) else (dx,)
    xs = net.x if isinstance(net.x, tuple) else (net.x,)
    assert all(a.dtype == drawn[0] for a in (*outs, *dxs))
    assert [a.shape for a in dxs] == [a.shape for a in xs]
    assert grads.keys() == params.keys()


@pytest.mark.parametrize("case_id", [c.id for c in CASES if c.id != "bind"])
@SWEEP
@given(drawn=drawn)
def test_combinators_refuse_bad_params(case_id: str, drawn: tuple[type, int, int]) -> None:
    case = CASE[case_id]
    net, params, _, cache, dy = _built(case, *drawn)
    like: Arr = np.ones(2, drawn[0])
    for fault, (bad, word) in _bad_params(params, like).items():
        err = _refused_unchanged(call(net.layer.forward, bad, net.x), bad, net.x)
        assert word is None or word in str(err), (fault, str(err))
        if fault == "a missing key" or (not case.own_keys and word != "mapping"):
            continue  # a child's own key: the leaf's backward checks it (the layers' sweep)
        err = _refused_unchanged(call(net.layer.backward, bad, cache, dy), bad, dy)
        assert word is None or word in str(err), (fault, str(err))
    if case_id == "named":  # the defect of the issue: a key outside the prefix was dropped silently
        err = refused(call(net.layer.forward, {**params, "other.w": like}, net.x))
        assert "other.w" in str(err)
    if case_id == "tie":  # the alias is stored once, under its source
        assert "b.w" in str(refused(call(net.layer.forward, {**params, "b.w": params["a.w"]}, net.x)))


@pytest.mark.parametrize("case_id", [c.id for c in CASES if c.id != "bind"])
@SWEEP
@given(drawn=drawn)
def test_combinators_refuse_bad_contexts_and_caches(case_id: str, drawn: tuple[type, int, int]) -> None:
    case = CASE[case_id]
    net, params, _, cache, dy = _built(case, *drawn)
    not_a_context: object
    for not_a_context in (True, None, {}, "train"):
        _refused_unchanged(call(net.layer.forward, params, net.x, not_a_context), net.x)
    if case.routes_buffers:
        stray = fdl.Context(buffers={"zzz.running_mean": np.zeros(2, drawn[0])})
        assert "zzz" in str(refused(call(net.layer.forward, params, net.x, stray)))
    others = (None, (), ParallelCache(()), SerialCache(()), FanInSumCache(2, (1,), np.dtype(np.float64)))
    for other in others:
        if type(other) is not type(cache):
            _refused_unchanged(call(net.layer.backward, params, other, dy), dy)
    _refused_unchanged(call(net.layer.init, 0, net.in_shape))  # a seed, not a key


def _wrong_arrays(a: Arr) -> list[object]:
    """Gradients (or branches) in place of ``a`` that must be refused."""
    b, w = a.shape
    other = np.float64 if a.dtype == np.float32 else np.float32
    wrong = np.ones((1, w), a.dtype) if b > 1 else np.ones((b, w + 1), a.dtype)  # broadcastable when b > 1
    return [wrong, np.ones((b, w + 1), a.dtype), a.astype(other), a.astype(np.int64), a.tolist(), a[None]]


@pytest.mark.parametrize("case_id", [c.id for c in CASES if c.fans_out or c.owns_dy or c.branches_in])
@SWEEP
@given(drawn=drawn)
def test_branches_and_their_gradients_are_checked(case_id: str, drawn: tuple[type, int, int]) -> None:
    case = CASE[case_id]
    net, params, _, cache, dy = _built(case, *drawn)
    if case.fans_out:  # each branch's gradient against the input it is the gradient of
        for g in _wrong_arrays(dy[0]):
            _refused_unchanged(call(net.layer.backward, params, cache, (dy[0], g)), dy)
            _refused_unchanged(call(net.layer.backward, params, cache, (g, dy[1])), dy)
        _refused_unchanged(call(net.layer.backward, params, cache, dy[0]), dy)  # not a tuple
        _refused_unchanged(call(net.layer.backward, params, cache, dy[:1]), dy)  # one branch short
        _refused_unchanged(call(net.layer.forward, params, net.x.tolist()), net.x)  # a list to copy
    if case.owns_dy:
        for g in [*_wrong_arrays(dy), None, (dy, dy)]:
            _refused_unchanged(call(net.layer.backward, params, cache, g), dy)
    if case.branches_in:
        x0, x1 = net.x
        bad_inputs: list[object] = [x0, (), (x0,) if case_id == "parallel" else (x0, x1[:0])]
        if case_id != "parallel":  # the fan-ins' dtype rule: one floating dtype, arrays only
            other = np.float64 if x0.dtype == np.float32 else np.float32
            bad_inputs += [
                (x0.astype(np.int64), x1.astype(np.int64)),
                (x0, x1.astype(other)),
                (x0, x1.tolist()),
                (x0, None),
                (x0, x1[None]),
            ]
        if case_id == "fan_in_sum":
            bad_inputs.append((x0, np.ones((x0.shape[0], x0.shape[1] + 1), x0.dtype)))
        for bad in bad_inputs:
            _refused_unchanged(call(net.layer.forward, params, bad), net.x)
        for shape in ((None, 3), ((None, 3), None), ((None, 3), 3), 5):
            _refused_unchanged(call(net.layer.init, fdl.random.key(0), shape))


def _not_layers() -> list[object]:
    return [L.relu, None, "dense", 3, np.ones(2)]


def test_combinators_refuse_non_layers_and_bad_arguments_when_built() -> None:
    good = L.relu()
    builds: list[Callable[[], object]] = []
    for bad in _not_layers():
        builds += [
            call(fdl.serial, good, bad),
            call(fdl.serial, a=good, b=bad),
            call(parallel, bad, good),
            call(residual, bad),
            call(named, "x", bad),
            call(tie, bad, {}),
        ]
    builds += [call(fan_out, n) for n in (0, -1, 1.5, True, "2", None)]
    builds += [call(fan_in_concat, axis) for axis in (0, 1.5, "1", True, None)]
    builds += [call(named, name, good) for name in ("", "a.b", 3, None)]
    ties: list[object] = [
        [("a.w", "b.w")],
        "a.w",
        None,
        {"a.w": "a.w"},
        {"a.w": 1},
        {"a.w": "b.w", "b.w": "c.w"},
    ]
    builds += [call(tie, good, t) for t in ties]
    builds += [
        fdl.serial,
        parallel,
        call(fdl.serial, good, head=good),
        call(fdl.serial, **{"a.b": good}),
        call(fdl.serial, **{"": good}),
    ]
    for build in builds:
        err = refused(build)
        assert isinstance(err, LayerError) and err.path, err


def test_bind_refuses_what_is_not_a_network_params_or_context() -> None:
    net, params, *_ = _built(CASE["bind"], np.float32, 2, 3)
    for bad_net in _not_layers():
        refused(call(fdl.bind, bad_net, params))
    for bad_params in (None, [1], 3):
        refused(call(fdl.bind, net.layer, bad_params))
    ctx: object
    for ctx in (True, None, {}):
        refused(call(fdl.bind, net.layer, params, ctx=ctx))
    bound = fdl.bind(net.layer, {**params, "zzz.w": np.ones(1, np.float32)})
    assert "zzz" in str(refused(call(bound, net.x)))  # the network's own checks apply to the call
