"""The sweep over every layer: inputs wrong in one way at a time.

It walks every case of the layer registry (``tests/layers/cases.py``) and every factory in
``functional_dl.layers.__all__``, so a new layer is swept as soon as it has a registry case (and
:func:`test_every_public_factory_has_a_registry_case` fails until it has one). Each case is drawn
by hypothesis as the contract tests draw it (float32 params, an input, a context), then broken in
exactly one way (:data:`KINDS` lists the ways):

* the input ``x``: a list, a tuple, ``None``, a scalar, another dtype (float64, int, bool,
  complex, object; floats for an embedding's ids);
* the params, in ``forward`` and in ``backward``: each key missing, an extra key, and each
  parameter with an extra axis, a longer last axis, a broadcastable ``(1,)`` shape, another dtype,
  as a list or ``None``; the whole mapping ``None`` or a list;
* the buffers (batch norm's running statistics), likewise;
* ``backward``'s ``dy``: a list, a tuple, ``None``, a scalar, another shape, another dtype; and
  its cache: ``None``, or the cache of every registry case of another kind;
* ``init``: a malformed ``in_shape`` and a key that is not a key;
* the factories: each argument of every call the registry makes replaced by a meaningless or an
  odd value, an unknown option, and non-float dtypes;
* an empty batch, which must go through (as in PyTorch).

A call must raise one of the library's own exceptions (``functional_dl.errors``). Any other
exception, any warning, any silent acceptance and any mutated input fails the sweep (the helpers
are in ``tests/sweep.py``). A few faults have a meaning and may work instead (a one-entry tuple
for a layer that takes tuples; float64 into a layer without params; an odd factory argument such
as a negative slope), and then must give the answer of the plain call, or at least a layer whose
``init`` and first call work or are refused cleanly.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DTypeError, FunctionalDLError, KeyTypeError, ShapeError
from tests.layers.cases import LAYER_CASES, LayerCase
from tests.layers.inputs import draw_case, example_case
from tests.sweep import accepted, accepted_or_refused, refused, snapshot, unchanged

T = TypeVar("T")

SWEEP = settings(max_examples=3)

CASES = {c.id: c for c in LAYER_CASES}
IDS = list(CASES)

#: Every public layer factory (the types in ``__all__``, such as ``RecurrentInput``, are not).
FACTORIES = sorted(name for name in L.__all__ if not isinstance(getattr(L, name), type))

#: The ways an input is broken, by what they break (the report counts them).
KINDS = {
    "x": ["a list", "a tuple", "None", "a scalar", "float64", "int32", "bool", "complex", "object"],
    "params": [
        "key missing",
        "an extra key",
        "an extra axis",
        "a longer last axis",
        "shape (1,)",
        "float64",
        "int64",
        "complex",
        "a list",
        "None",
        "params None",
        "params a list",
    ],
    "buffers": [
        "key missing",
        "an extra axis",
        "a longer last axis",
        "shape (1,)",
        "float64",
        "int64",
        "a list",
        "buffers None",
    ],
    "dy": [
        "a list",
        "a tuple",
        "None",
        "a scalar",
        "an extra axis",
        "one more row",
        "float64",
        "int32",
        "complex",
    ],
    "cache": ["None", "another kind of layer's"],
    "in_shape": [
        "an int",
        "a float",
        "a list",
        "None",
        "()",
        "negative",
        "zero",
        "bool",
        "a string",
        "a float size",
        "nested",
    ],
    "key": ["an int", "None", "a string"],
    "factory argument": [
        "a numeric string",
        "NaN",
        "an object",
        "-1",
        "0",
        "2.5",
        "True",
        "None",
        "an unknown option",
    ],
    "dtype": ["int32", "bool", "complex", "object", "None", "a string"],
    "empty batch": ["batch 0"],
}


def _refused_unchanged(call: Callable[[], object], what: str, *inputs: object) -> None:
    """``call`` is refused with a library error and leaves ``inputs`` as they were."""
    before = snapshot(inputs)
    refused(call, what)
    unchanged(before, inputs)


def _same_or_refused(call: Callable[[], tuple[Any, Any]], expected: Any, what: str, *inputs: object) -> None:
    """``call`` is refused, or works and gives ``expected`` (up to its dtype); ``inputs`` unchanged."""
    before = snapshot(inputs)
    result = accepted_or_refused(call, what)
    if not isinstance(result, FunctionalDLError):
        got = np.asarray(result[0], np.float64)
        np.testing.assert_allclose(got, np.asarray(expected, np.float64), rtol=1e-5, atol=1e-6, err_msg=what)
    unchanged(before, inputs)


def _draw(case: LayerCase, data: st.DataObject) -> tuple[fdl.Layer[Any], fdl.Params, Any, fdl.Context]:
    layer, params, x, ctx, _ = draw_case(case, data, np.float32)
    return layer, params, x, ctx


class Drawn(NamedTuple):
    """A registry case drawn and run forward once: what the backward faults start from."""

    layer: fdl.Layer[Any]
    params: fdl.Params
    cache: object
    dy: np.ndarray[Any, Any]  # ones of the output's shape and dtype


def _draw_forward(case_id: str, data: st.DataObject) -> Drawn:
    layer, params, x, ctx = _draw(CASES[case_id], data)
    y, cache = layer.forward(params, x, ctx)
    return Drawn(layer, params, cache, np.ones_like(y))


def _grad_calls(layer: fdl.Layer[Any]) -> tuple[tuple[str, Callable[..., object]], ...]:
    """Both ways into a backward pass: ``backward`` and ``param_grads`` (which may skip ``dx``)."""
    return (("backward", layer.backward), ("param_grads", layer.param_grads))


# ---- the input x --------------------------------------------------------------------------------


def _bad_inputs(x: np.ndarray[Any, Any], ids: bool) -> dict[str, Any]:
    bad: dict[str, Any] = {
        "a list": x.tolist(),
        "a tuple": (x,),
        "None": None,
        "a scalar": 1.0,
        "float64": x.astype(np.float64),  # for ids: floats where integers belong
        "bool": x > 0,
        "complex": x.astype(np.complex64),
        "object": x.astype(object),
    }
    if not ids:
        bad["int32"] = x.astype(np.int32)
    return bad


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_forward_refuses_a_bad_input(case_id: str, data: st.DataObject) -> None:
    case = CASES[case_id]
    layer, params, x, ctx = _draw(case, data)
    y, _ = accepted(partial(layer.forward, params, x, ctx), f"{case_id}: the plain call")
    without_arrays = not params and not ctx.buffers  # then any float dtype is the layer's (rule 4)
    for kind, bad in _bad_inputs(x, bool(case.ids)).items():
        call, what = partial(layer.forward, params, bad, ctx), f"{case_id}, x as {kind}"
        if kind == "a tuple" or (kind == "float64" and not case.ids and without_arrays):
            # x alone means (x,) to a layer that takes tuples; a layer without arrays takes float64
            _same_or_refused(call, y, what, params, x, ctx)
        else:
            _refused_unchanged(call, what, params, x, ctx)


# ---- params and buffers ---------------------------------------------------------------------------


def _bad_arrays(a: np.ndarray[Any, Any]) -> dict[str, Any]:
    """One array wrong in each way of :data:`KINDS` (shapes, dtypes, not an array), by kind."""
    bad: dict[str, Any] = {
        "an extra axis": a[..., None],
        "float64": a.astype(np.float64),
        "int64": a.astype(np.int64),
        "complex": a.astype(np.complex64),
        "a list": a.tolist(),
        "None": None,
    }
    if a.ndim:
        bad["a longer last axis"] = np.concatenate([a, a[..., :1]], axis=-1)
    if a.shape != (1,) and a.size:
        bad["shape (1,)"] = a.reshape(-1)[:1].copy()
    return bad


def _bad_params(params: fdl.Params) -> Iterator[tuple[str, Any]]:
    """``(kind, params)`` for every way :data:`KINDS` breaks a parameter mapping."""
    for key in sorted(params):
        yield f"params: key missing ({key})", {k: v for k, v in params.items() if k != key}
        for kind, bad in _bad_arrays(params[key]).items():
            yield f"params: {kind} ({key})", {**params, key: bad}
    yield "params: an extra key", {**params, "zzz": np.zeros(1, np.float32)}
    yield "params: params None", None
    yield "params: params a list", list(params.values())


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_forward_refuses_bad_params(case_id: str, data: st.DataObject) -> None:
    case = CASES[case_id]
    layer, params, x, ctx = _draw(case, data)
    y, _ = layer.forward(params, x, ctx)
    for kind, bad in _bad_params(params):
        call, what = partial(layer.forward, bad, x, ctx), f"{case_id}, {kind}"
        if case.ids and len(params) == 1 and kind.startswith("params: float64"):
            # An embedding alone with float64 weights is an embedding in float64 (ids have no dtype).
            _same_or_refused(call, y, what, params, x, ctx)
        else:
            _refused_unchanged(call, what, params, x, ctx)


#: The faults of the params that backward, which reads no input, could let through.
BACKWARD_PARAM_FAULTS = tuple(
    f"params: {kind}"
    for kind in ("key missing", "an extra key", "an extra axis", "float64", "a list", "params None")
)


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_backward_refuses_params_that_are_not_the_forwards(case_id: str, data: st.DataObject) -> None:
    layer, params, cache, dy = _draw_forward(case_id, data)
    for kind, bad in _bad_params(params):
        if not kind.startswith(BACKWARD_PARAM_FAULTS):
            continue
        for name, grads in _grad_calls(layer):
            _refused_unchanged(
                partial(grads, bad, cache, dy), f"{case_id}, {name}, {kind}", params, cache, dy
            )


def _bad_buffers(buffers: fdl.Buffers) -> Iterator[tuple[str, Any]]:
    for key in sorted(buffers):
        yield f"buffers: key missing ({key})", {k: v for k, v in buffers.items() if k != key}
        for kind, bad in _bad_arrays(buffers[key]).items():
            if kind in KINDS["buffers"]:
                yield f"buffers: {kind} ({key})", {**buffers, key: bad}
    yield "buffers: buffers None", None


def _has_buffers(case: LayerCase) -> bool:
    return bool(case.make().init_with_buffers(fdl.random.key(0), (None, *case.example_features))[2])


@pytest.mark.parametrize("case_id", [c.id for c in LAYER_CASES if _has_buffers(c)])
@SWEEP
@given(data=st.data())
def test_forward_refuses_bad_buffers(case_id: str, data: st.DataObject) -> None:
    """Batch norm's running statistics, both of them, are checked like params (kind 12)."""
    layer, params, x, ctx = _draw(CASES[case_id], data)
    for kind, bad in _bad_buffers(ctx.buffers):
        call = partial(layer.forward, params, x, ctx._replace(buffers=bad))
        _refused_unchanged(call, f"{case_id}, {kind}", params, x, ctx)


# ---- backward's dy and cache -----------------------------------------------------------------------


def _bad_dys(y: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "a list": y.tolist(),
        "a tuple": (y,),
        "None": None,
        "a scalar": 1.0,
        "an extra axis": y[..., None],
        "one more row": np.concatenate([y, y[:1]]) if len(y) else np.ones((1, *y.shape[1:]), y.dtype),
        "float64": y.astype(np.float64),
        "int32": np.ones(y.shape, np.int32),
        "complex": y.astype(np.complex64),
    }


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_backward_refuses_a_bad_dy(case_id: str, data: st.DataObject) -> None:
    layer, params, cache, dy = _draw_forward(case_id, data)
    for kind, bad in _bad_dys(dy).items():
        for name, grads in _grad_calls(layer):
            _refused_unchanged(
                partial(grads, params, cache, bad), f"{case_id}, {name}, dy {kind}", params, cache
            )


@functools.cache
def _donor_caches() -> dict[str, tuple[str, object]]:
    """``{case id: (layer name, cache)}``: a cache of every registry case, from its example input."""
    donors = {}
    for case in LAYER_CASES:
        layer, params, x, ctx = example_case(case)
        donors[case.id] = (layer.name, layer.forward(params, x, ctx)[1])
    return donors


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_backward_refuses_a_cache_its_forward_did_not_make(case_id: str, data: st.DataObject) -> None:
    layer, params, _, dy = _draw_forward(case_id, data)
    foreign = [(cid, cache) for cid, (name, cache) in _donor_caches().items() if name != layer.name]
    for donor, cache in [("None", None), *foreign]:
        for name, grads in _grad_calls(layer):
            what = f"{case_id}, {name}, the cache of {donor}"
            _refused_unchanged(partial(grads, params, cache, dy), what, params, dy)


# ---- init ----------------------------------------------------------------------------------------


def _bad_in_shapes(features: tuple[int, ...]) -> dict[str, Any]:
    first, rest = features[0], features[1:]
    return {
        "an int": first,
        "a float": float(first),
        "a list": [None, *features],
        "None": None,
        "()": (),
        "negative": (None, -first, *rest),
        "zero": (None, 0, *rest),
        "bool": (None, True, *rest),
        "a string": (None, str(first), *rest),
        "a float size": (None, float(first), *rest),
        "nested": ((None, *features),),
    }


@pytest.mark.parametrize("case_id", IDS)
def test_init_refuses_a_bad_in_shape_and_key(case_id: str) -> None:
    case = CASES[case_id]
    layer = case.make()
    key, in_shape = fdl.random.key(0), (None, *case.example_features)
    plain = layer.init_with_buffers(key, in_shape)
    for kind, bad in _bad_in_shapes(case.example_features).items():
        call, what = partial(layer.init_with_buffers, key, bad), f"{case_id}, in_shape {kind}"
        if kind == "nested":  # a one-entry tuple of shapes means (x,) to a layer that takes tuples
            out = accepted_or_refused(call, what)
            if not isinstance(out, FunctionalDLError):  # then forward takes (x,) too, and means x
                assert out[0] == plain[0] and fdl.params.allclose(out[1], plain[1], rtol=0), what
                _, params, x, ctx = example_case(case)
                alone: Any = (x,)
                y, _ = layer.forward(params, x, ctx)
                one, _ = accepted(
                    partial(layer.forward, params, alone, ctx), f"{what}: so forward takes (x,)"
                )
                np.testing.assert_array_equal(one, y)
        else:
            assert isinstance(refused(call, what), ShapeError)
    bad_keys: dict[str, Any] = {"an int": 0, "None": None, "a string": "0"}
    for kind, bad_key in bad_keys.items():
        err = refused(partial(layer.init_with_buffers, bad_key, in_shape), f"{case_id}, key {kind}")
        assert isinstance(err, KeyTypeError), err


# ---- the empty batch -----------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", IDS)
@SWEEP
@given(data=st.data())
def test_an_empty_batch_goes_through(case_id: str, data: st.DataObject) -> None:
    """Batch 0: an empty output, an empty ``dx`` and zero gradients, as in PyTorch (kind 11)."""
    case = CASES[case_id]
    layer, params, x, ctx = _draw(case, data)
    empty = x[:0]
    y, cache = accepted(partial(layer.forward, params, empty, ctx), f"{case_id}: forward")
    full_y, _ = layer.forward(params, x, ctx)
    assert y.shape == (0, *full_y.shape[1:]) and y.dtype == full_y.dtype
    dx, grads = accepted(partial(layer.backward, params, cache, np.zeros_like(y)), f"{case_id}: backward")
    if not case.ids:
        assert dx.shape == empty.shape and dx.dtype == empty.dtype
    assert grads.keys() == params.keys()
    for k, g in grads.items():
        assert g.shape == params[k].shape and g.dtype == params[k].dtype and not g.any(), k
    for k, b in layer.buffers_of(cache).items():  # no data, no statistics: the running ones stay
        np.testing.assert_array_equal(b, ctx.buffers[k])


# ---- the factories --------------------------------------------------------------------------------

FactoryCall = tuple[str, tuple[Any, ...], dict[str, Any]]  # (case id, args, kwargs)


@functools.cache
def factory_calls() -> dict[str, list[FactoryCall]]:
    """``{factory: [(case id, args, kwargs), ...]}``: every factory call made by the registry's ``make``.

    The registry calls its factories through ``functional_dl.layers`` (``L.dense(3)``), so each is
    replaced by a recorder while every case is made; a case whose ``make`` is a factory itself
    (``L.relu``) is recorded as its call without arguments.
    """
    calls: dict[str, list[FactoryCall]] = defaultdict(list)
    originals = {name: getattr(L, name) for name in FACTORIES}
    current = [""]

    def recorder(name: str) -> Callable[..., fdl.Layer[Any]]:
        def record(*args: Any, **kwargs: Any) -> fdl.Layer[Any]:
            calls[name].append((current[0], args, kwargs))
            return originals[name](*args, **kwargs)  # type: ignore[no-any-return]

        return record

    try:
        for name in FACTORIES:
            setattr(L, name, recorder(name))
        for case in LAYER_CASES:
            current[0] = case.id
            calls.update(
                {name: [*calls[name], (case.id, (), {})] for name, f in originals.items() if case.make is f}
            )
            case.make()
    finally:
        for name, factory in originals.items():
            setattr(L, name, factory)
    return dict(calls)


def test_every_public_factory_has_a_registry_case() -> None:
    missing = sorted(set(FACTORIES) - set(factory_calls()))
    assert not missing, f"add a case to tests/layers/cases.py for {missing}"


#: Values that are no factory argument's meaning: each must be refused wherever it is put.
MEANINGLESS: dict[str, object] = {"a numeric string": "3", "NaN": math.nan, "an object": object()}
#: Values that mean something for some arguments (a slope of -1, no stride): refused or accepted.
ODD: dict[str, object] = {"-1": -1, "0": 0, "2.5": 2.5, "True": True, "None": None}


def _altered(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[tuple[str, object, partial[Any]]]:
    """``(label, value, call)`` with each argument in turn replaced by each value of MEANINGLESS and ODD."""
    for label, value in {**MEANINGLESS, **ODD}.items():
        for i in range(len(args)):
            yield f"argument {i} = {label}", value, partial(_call, (*args[:i], value, *args[i + 1 :]), kwargs)
        for k in kwargs:
            yield f"{k} = {label}", value, partial(_call, args, {**kwargs, k: value})


def _call(args: tuple[Any, ...], kwargs: dict[str, Any], make: Callable[..., T]) -> T:
    return make(*args, **kwargs)


def _first_call_works_or_refuses(layer: fdl.Layer[Any], case: LayerCase, what: str) -> None:
    """A layer made with an odd argument: its ``init`` and first call work or are refused cleanly."""

    def first_call() -> None:
        _, params, x, ctx = example_case(case._replace(make=lambda: layer))
        y, cache = layer.forward(params, x, ctx)
        layer.backward(params, cache, np.ones_like(y))

    accepted_or_refused(first_call, f"{what}, at the first call")


@pytest.mark.parametrize("factory", FACTORIES)
def test_factories_refuse_meaningless_arguments(factory: str) -> None:
    make = getattr(L, factory)
    calls = factory_calls().get(factory, [])
    # A case made by exactly one factory call can run the altered layer on its own example input.
    leaves = {
        cid for cid, _, _ in calls if sum(c == cid for f in factory_calls().values() for c, _, _ in f) == 1
    }
    for case_id, args, kwargs in calls:
        for label, value, call in _altered(args, kwargs):
            what = f"{factory} from {case_id}, {label}"
            if any(value is v for v in MEANINGLESS.values()):
                refused(partial(call, make), what)
                continue
            layer = accepted_or_refused(partial(call, make), what)
            assert isinstance(layer, FunctionalDLError | fdl.Layer), what
            if isinstance(layer, fdl.Layer) and case_id in leaves:
                _first_call_works_or_refuses(layer, CASES[case_id], what)
    if calls and any(p.kind is p.VAR_KEYWORD for p in inspect.signature(make).parameters.values()):
        _, args, kwargs = calls[0]
        refused(partial(make, *args, **kwargs, not_an_option=1), f"{factory}, an unknown option")


def _takes_dtype(factory: str) -> bool:
    """Whether the factory takes ``dtype=``, as a parameter or as one of its ``**options``."""
    parameters = inspect.signature(getattr(L, factory)).parameters
    options = [p.annotation for p in parameters.values() if p.kind is p.VAR_KEYWORD]
    return "dtype" in parameters or any("Options" in str(a) for a in options)


@pytest.mark.parametrize("factory", [f for f in FACTORIES if _takes_dtype(f)])
def test_factories_refuse_non_float_dtypes(factory: str) -> None:
    make = getattr(L, factory)
    _, args, kwargs = factory_calls()[factory][0]
    for dtype in (np.int32, bool, complex, object, None, "int64"):
        err = refused(partial(make, *args, **{**kwargs, "dtype": dtype}), f"{factory}, dtype={dtype!r}")
        assert isinstance(err, DTypeError), err


# ---- errors name the layer path --------------------------------------------------------------------


def test_errors_name_the_path_through_serial_and_named() -> None:
    net = fdl.serial(L.relu(), fdl.named("block", fdl.serial(L.dense(3), L.layer_norm())))
    _, params = net.init(fdl.random.key(0), (None, 4))
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ShapeError, match=r"^1\.block\.1\.layer_norm: expected parameter 'scale' of shape"):
        net.forward({**params, "1.block.1.scale": np.ones(2, np.float32)}, x)
    y, cache = net.forward(params, x)
    with pytest.raises(DTypeError, match=r"^1\.block\.1\.layer_norm: expected dy of dtype float32"):
        net.backward(params, cache, np.ones(y.shape))
    wide_bias = {**params, "1.block.0.b": params["1.block.0.b"].astype(np.float64)}
    with pytest.raises(DTypeError, match=r"^1\.block\.0\.dense: expected parameter 'b' of dtype float32"):
        net.backward(wide_bias, cache, np.ones_like(y))
    relu_cache, block_cache = cache.caches
    assert isinstance(block_cache, fdl.combinators.NamedCache)
    inner: Any = block_cache.inner
    with pytest.raises(fdl.errors.ParamsError, match=r"^1\.block: expected the cache .*\(NamedCache\)"):
        net.backward(params, cache._replace(caches=(relu_cache, relu_cache)), np.ones_like(y))
    dense_cache, norm_cache = inner.caches
    swapped = block_cache._replace(inner=inner._replace(caches=(norm_cache, dense_cache)))
    with pytest.raises(
        fdl.errors.ParamsError, match=r"^1\.block\.1\.layer_norm: expected the cache .*got DenseCache"
    ):
        net.backward(params, cache._replace(caches=(relu_cache, swapped)), np.ones_like(y))


# ---- shared cache types record their kind -----------------------------------------------------------

SHARED_CACHE_TYPES: list[tuple[Callable[[], fdl.Layer[Any]], Callable[[], fdl.Layer[Any]], fdl.Shape]] = [
    (L.relu, L.sigmoid, (None, 3)),
    (L.layer_norm, partial(L.group_norm, 1), (None, 2, 3)),
    (partial(L.gru, 2), partial(L.lstm, 2), (None, 3, 2)),
    (partial(L.rnn, 2), partial(L.rnn, 2, nonlinearity="relu"), (None, 3, 2)),
    (partial(L.conv2d, 2, 3), partial(L.conv2d, 2, 1), (None, 1, 3, 3)),
    (partial(L.avg_pool1d, 2), partial(L.avg_pool1d, 2, stride=1), (None, 1, 4)),
    (partial(L.max_pool2d, 2), partial(L.max_pool2d, 2, stride=1), (None, 1, 4, 4)),
    (L.batch_norm1d, L.batch_norm, (None, 3)),
    (L.flatten, partial(L.reshape, (-1,)), (None, 2, 3)),
    (partial(L.conv_transpose1d, 2, 3), partial(L.conv_transpose1d, 2, 1), (None, 1, 4)),
    (partial(L.adaptive_max_pool1d, 2), L.global_max_pool, (None, 1, 4)),
    (partial(L.adaptive_avg_pool1d, 2), partial(L.adaptive_avg_pool1d, 3), (None, 1, 4)),
    (L.sinusoidal_positional_encoding, partial(L.learned_positional_encoding, 4), (None, 3, 2)),
]


@pytest.mark.parametrize(("make_a", "make_b", "in_shape"), SHARED_CACHE_TYPES)
def test_a_cache_of_another_kind_sharing_the_type_is_refused(
    make_a: Callable[[], fdl.Layer[Any]], make_b: Callable[[], fdl.Layer[Any]], in_shape: fdl.Shape
) -> None:
    """Activations, norms, recurrent layers, convolutions, pools and shape layers share cache types."""
    a, b = make_a(), make_b()
    _, pa, sa = a.init_with_buffers(fdl.random.key(0), in_shape)
    _, pb, sb = b.init_with_buffers(fdl.random.key(0), in_shape)
    x = fdl.random.normal(fdl.random.key(1), (2, *(d for d in in_shape[1:] if d is not None)), np.float32)
    ya, cache_a = a.forward(pa, x, fdl.Context(buffers=sa))
    yb, cache_b = b.forward(pb, x, fdl.Context(buffers=sb))
    assert type(cache_a) is type(cache_b)
    refused(partial(b.backward, pb, cache_a, np.ones_like(yb)), f"{b.name} given {a.name}'s cache")
    refused(partial(a.backward, pa, cache_b, np.ones_like(ya)), f"{a.name} given {b.name}'s cache")
