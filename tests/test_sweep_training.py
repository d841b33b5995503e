"""The sweep over optimizers, training and checkpoints: inputs wrong in one way at a time.

Every named optimizer and gradient transformation of the registries (``tests/optim/cases.py``),
every optimizer exported by ``fdl.optim``, the train entry points (``fit``, ``evaluate``,
``minibatches``, ``train_step``) and ``checkpoint.save``/``load`` are fed hypothesis-generated
inputs that are wrong in exactly one way. Each call must either raise one of the library's own
exceptions (``functional_dl.errors``) or, where the input is meaningful (a list as data), work.
Any other exception, any warning, any silent acceptance of a meaningless input and any mutated
input fails the sweep.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import checkpoint, optim, train
from functional_dl import layers as L
from functional_dl.errors import FunctionalDLError
from functional_dl.optim.base import Optimizer, OptimizerState
from functional_dl.params import freeze
from tests.optim.cases import OPTIMIZER_CASES, TRANSFORM_CASES
from tests.sweep import (
    bad_values,
    call,
    masked,
    matrix,
    plain_subclass,
    refusal,
    refused,
    snapshot,
    strict,
    unchanged,
)

SWEEP = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Every optimizer factory exported by fdl.optim (a callable whose result is an Optimizer).
EXPORTED_OPTIMIZERS = sorted(
    name for name in optim.__all__ if name in {c.id for c in OPTIMIZER_CASES} | {"lars", "sgd"}
)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple)


@st.composite
def param_trees(draw: st.DrawFn) -> dict[str, np.ndarray[Any, Any]]:
    """Params named like a network's (``0.w``, ``0.b``, ``2.w``) of drawn shapes, float64."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return {k: rng.normal(size=draw(shapes)) for k in ("0.w", "0.b", "2.w")}


def _grads_like(params: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
    return {k: np.full_like(p, 0.5) for k, p in params.items()}


def _make(case_id: str) -> Optimizer[Any]:
    case = next(c for c in OPTIMIZER_CASES if c.id == case_id)
    return case.make(case.quad[0])


OPT_IDS = [c.id for c in OPTIMIZER_CASES]
GRAD_FAULTS = [
    "missing key",
    "extra key",
    "wrong shape",
    "wrong dtype",
    "a list",
    "a scalar",
    "a masked array",
    "an np.matrix",
]


def _bad_grads(params: dict[str, np.ndarray[Any, Any]], fault: str) -> dict[str, Any]:
    g: dict[str, Any] = _grads_like(params)
    if fault == "missing key":
        del g["0.b"]
    elif fault == "extra key":
        g["9.w"] = np.ones(2)
    elif fault == "wrong shape":
        g["0.w"] = np.ones((*params["0.w"].shape, 2))
    elif fault == "wrong dtype":
        g["0.w"] = g["0.w"].astype(np.float32)
    elif fault == "a list":
        g["0.w"] = g["0.w"].tolist()
    elif fault == "a masked array":
        g["0.w"] = masked(g["0.w"])
    elif fault == "an np.matrix":
        g["0.w"] = matrix(g["0.w"])
    else:
        g["0.w"] = 0.5
    return g


@pytest.mark.parametrize("fault", GRAD_FAULTS)
@pytest.mark.parametrize("case_id", OPT_IDS)
@SWEEP
@given(params=param_trees())
def test_optimizers_refuse_bad_grads(
    case_id: str, fault: str, params: dict[str, np.ndarray[Any, Any]]
) -> None:
    opt = _make(case_id)
    state = opt.init(params)
    grads = _bad_grads(params, fault)
    before = snapshot((params, state, grads))
    refused(lambda: opt.update(state, grads))
    unchanged(before, (params, state, grads))


@pytest.mark.parametrize("case_id", OPT_IDS)
@SWEEP
@given(params=param_trees())
def test_optimizers_take_plain_subclasses_and_refuse_masked_or_matrix_params(
    case_id: str, params: dict[str, np.ndarray[Any, Any]]
) -> None:
    """Masked arrays and ``np.matrix`` are refused as params too; a subclass that changes nothing is not."""
    opt = _make(case_id)
    for bad in (masked, matrix):
        refused(partial(opt.init, {**params, "0.w": bad(params["0.w"])}), f"{case_id}, {bad.__name__} params")
    grads = _grads_like(params)
    _, expected = opt.update(opt.init(params), grads)
    with strict():
        _, got = opt.update(opt.init(params), {k: plain_subclass(g) for k, g in grads.items()})
    for k in expected:
        np.testing.assert_array_equal(np.asarray(got[k]), expected[k], err_msg=k)


@pytest.mark.parametrize("case_id", OPT_IDS)
def test_optimizers_refuse_a_state_another_optimizer_made(case_id: str) -> None:
    params = {"0.w": np.ones((3, 2)), "0.b": np.zeros(3)}
    other = "adam" if case_id == "lion" else "lion"
    foreign = _make(other).init(params)
    err = refused(lambda: _make(case_id).update(foreign, _grads_like(params)))
    assert "expected" in str(err) and "got" in str(err)


@pytest.mark.parametrize("case_id", OPT_IDS)
@SWEEP
@given(params=param_trees(), other=param_trees())
def test_optimizers_refuse_a_state_made_for_another_tree(
    case_id: str, params: dict[str, np.ndarray[Any, Any]], other: dict[str, np.ndarray[Any, Any]]
) -> None:
    if all(params[k].shape == other[k].shape for k in params):
        other = {**other, "0.w": np.ones((*params["0.w"].shape, 1))}
    opt = _make(case_id)
    mixed = OptimizerState(freeze(params), opt.init(other).inner, 0)
    refused(lambda: opt.update(mixed, _grads_like(params)))


@pytest.mark.parametrize("case_id", OPT_IDS)
@SWEEP
@given(params=param_trees(), zero=st.booleans())
def test_float16_params_never_turn_to_nan(
    case_id: str, params: dict[str, np.ndarray[Any, Any]], zero: bool
) -> None:
    half = {k: p.astype(np.float16) for k, p in params.items()}
    grads = {k: (np.zeros_like(p) if zero else np.full_like(p, 1e-3)) for k, p in half.items()}
    opt = _make(case_id)
    with strict():
        state = opt.init(half)
        for _ in range(3):
            state, new = opt.update(state, grads)
    for k, p in new.items():
        assert p.dtype == np.float16, k
        assert np.isfinite(p).all(), f"{case_id}: {k} is not finite"
        if zero and case_id not in ("sgd_weight_decay", "adamw", "lamb", "lars"):
            np.testing.assert_array_equal(p, half[k])  # a zero gradient moves nothing


TRANSFORM_IDS = [c.id for c in TRANSFORM_CASES]


def _transform(case_id: str) -> optim.GradientTransformation[Any]:
    return next(c for c in TRANSFORM_CASES if c.id == case_id).make()


@pytest.mark.parametrize("case_id", TRANSFORM_IDS)
def test_transformations_refuse_a_foreign_state(case_id: str) -> None:
    params = {"0.w": np.ones((3, 2)), "0.b": np.zeros(3), "2.w": np.ones((1, 3))}
    t = _transform(case_id)
    own = t.init(params)
    foreign = (
        optim.scale_by_lion().init(params)
        if case_id != "scale_by_lion"
        else optim.scale_by_adam().init(params)
    )
    if type(foreign) is type(own):
        pytest.skip("same state type")
    refused(lambda: t.update(_grads_like(params), foreign, params))


@pytest.mark.parametrize("case_id", TRANSFORM_IDS)
@SWEEP
@given(params=param_trees())
def test_transformations_refuse_a_state_for_another_tree(
    case_id: str, params: dict[str, np.ndarray[Any, Any]]
) -> None:
    t = _transform(case_id)
    bigger = {k: np.ones((*p.shape, 2)) for k, p in params.items()}
    state = t.init(bigger)
    if not snapshot(state):
        return  # keeps no per-parameter arrays: nothing of the tree to mismatch
    before = snapshot((params, state))
    refused(lambda: t.update(_grads_like(params), state, params))
    unchanged(before, (params, state))


# ---- training -------------------------------------------------------------------------------

NET = fdl.serial(L.dense(3), L.relu(), L.dense(2))
_, NET_PARAMS = NET.init(fdl.random.key(0), (None, 4))


def _fit(**overrides: Any) -> train.FitResult[Any]:
    opt = optim.sgd(0.1)
    x = np.ones((6, 4), np.float32)
    y = np.zeros(6, np.int64)
    kwargs: dict[str, Any] = {"epochs": 1, "batch_size": 2, "progress": "none", "key": fdl.random.key(1)}
    data: Any = overrides.pop("data", (x, y))
    params: fdl.Params = overrides.pop("params", NET_PARAMS)
    kwargs.update(overrides)
    return train.fit(
        NET, fdl.losses.softmax_cross_entropy, opt, train.init_train_state(opt, params), data, **kwargs
    )


@SWEEP
@given(batch_size=st.one_of(st.integers(-3, 0), st.just(True), st.floats(0.5, 3.5)))
def test_fit_refuses_a_meaningless_batch_size(batch_size: Any) -> None:
    refused(lambda: _fit(batch_size=batch_size))


@SWEEP
@given(epochs=st.one_of(st.integers(-5, -1), st.floats(0.5, 2.5), st.just("1")))
def test_fit_refuses_a_meaningless_epochs(epochs: Any) -> None:
    refused(lambda: _fit(epochs=epochs))


def test_fit_takes_list_data() -> None:
    x = np.ones((6, 4))  # a list of Python floats is float64 data, for float64 params
    wide = {k: p.astype(np.float64) for k, p in NET_PARAMS.items()}
    with strict():
        a = _fit(data=(x.tolist(), [0] * 6), params=wide)
    with strict():
        b = _fit(data=(x, np.zeros(6, np.int64)), params=wide)
    for k in a.train_state.params:
        np.testing.assert_array_equal(a.train_state.params[k], b.train_state.params[k])


BAD_DATA: dict[str, Any] = {
    "not a pair": np.ones((6, 4), np.float32),
    "three parts": (np.ones((6, 4), np.float32), np.zeros(6, np.int64), np.zeros(6)),
    "ragged x": ([[1.0, 2.0], [1.0]], [0, 1]),
    "strings": (np.array([["a"] * 4] * 6), np.zeros(6, np.int64)),
    "objects": (np.empty((6, 4), object), np.zeros(6, np.int64)),
    "0-d x": (np.float32(1.0), np.zeros(6, np.int64)),
    "sample counts differ": (np.ones((6, 4), np.float32), np.zeros(5, np.int64)),
    "wrong features": (np.ones((6, 5), np.float32), np.zeros(6, np.int64)),
    "masked x": (masked(np.ones((6, 4), np.float32)), np.zeros(6, np.int64)),
    "np.matrix x": (matrix(np.ones((6, 4), np.float32)), np.zeros(6, np.int64)),
    "masked y": (np.ones((6, 4), np.float32), masked(np.zeros(6, np.int64))),
}


@pytest.mark.parametrize("fault", sorted(BAD_DATA))
def test_fit_and_evaluate_refuse_bad_data(fault: str) -> None:
    data = BAD_DATA[fault]
    refused(lambda: _fit(data=data))
    refused(lambda: train.evaluate(NET, fdl.losses.softmax_cross_entropy, NET_PARAMS, data))


def _unknown_key(params: fdl.Params) -> tuple[float, dict[str, Any]]:
    return 1.0, {"9.w": np.ones(3, np.float32)}


def _wrong_shape(params: fdl.Params) -> tuple[float, dict[str, Any]]:
    return 1.0, {"0.w": np.ones((1,), np.float32)}


def _a_list(params: fdl.Params) -> tuple[float, dict[str, Any]]:
    return 1.0, {"0.w": params["0.w"].tolist()}


@pytest.mark.parametrize("penalty", [_unknown_key, _wrong_shape, _a_list])
def test_fit_refuses_bad_penalty_gradients(penalty: Any) -> None:
    err = refused(lambda: _fit(penalty=penalty))
    assert "penalty" in str(err)


# ---- checkpoints ----------------------------------------------------------------------------


def _not_data() -> int:
    return 0


def _nested_lists(depth: int) -> list[object]:
    tree: list[object] = []
    for _ in range(depth):
        tree = [tree]
    return tree


UNSAVEABLE: dict[str, object] = {
    "a function": {"f": _not_data},
    "an object array": {"w": np.empty(2, object)},
    "an int key": {1: np.ones(2)},
    "a set": {"s": {1, 2}},
    "too deep": _nested_lists(80),
    "a masked array": {"w": masked(np.ones(2))},
    "an np.matrix": {"w": matrix(np.ones((2, 2)))},
}


@pytest.mark.parametrize("fault", sorted(UNSAVEABLE))
def test_save_refuses_what_is_not_plain_data(tmp_path: Path, fault: str) -> None:
    path = tmp_path / "c.npz"
    refused(lambda: checkpoint.save(path, UNSAVEABLE[fault]))
    assert not path.exists()


TEMPLATE_FAULTS = ["wrong shape", "wrong dtype", "missing key", "extra key", "wrong kind", "wrong state type"]


@pytest.mark.parametrize("fault", TEMPLATE_FAULTS)
@SWEEP
@given(params=param_trees())
def test_load_refuses_a_template_that_does_not_match(
    tmp_path: Path, fault: str, params: dict[str, np.ndarray[Any, Any]]
) -> None:
    path = tmp_path / "c.npz"
    tree = {"params": params, "opt": optim.adam().init(params)}
    checkpoint.save(path, tree)
    p = dict(params)
    if fault == "wrong shape":
        p["0.w"] = np.ones((*p["0.w"].shape, 1))
    elif fault == "wrong dtype":
        p["0.w"] = p["0.w"].astype(np.float32)
    elif fault == "missing key":
        del p["0.b"]
    elif fault == "extra key":
        p["9.w"] = np.ones(1)
    template: dict[str, object] = {"params": p, "opt": optim.adam().init(params)}
    if fault == "wrong kind":
        template["params"] = list(params.values())
    elif fault == "wrong state type":
        template["opt"] = optim.lion().init(params)
    refused(lambda: checkpoint.load(path, template=template))


@SWEEP
@given(offset=st.integers(0, 10**6), value=st.integers(0, 255))
def test_load_refuses_a_corrupted_file(tmp_path: Path, offset: int, value: int) -> None:
    path = tmp_path / "c.npz"
    params = {"w": np.arange(6.0).reshape(2, 3)}
    checkpoint.save(path, params)
    raw = bytearray(path.read_bytes())
    i = offset % len(raw)
    if raw[i] == value:
        value = (value + 1) % 256
    raw[i] = value
    path.write_bytes(bytes(raw))
    with strict():
        try:
            out = checkpoint.load(path, template=params)
        except FunctionalDLError:
            return
        except Exception as err:
            pytest.fail(f"raw {type(err).__name__}: {err}")
    # A byte the format does not read (zip padding, a timestamp) may change harmlessly.
    assert isinstance(out, dict)
    np.testing.assert_array_equal(out["w"], params["w"])


# ---- hyperparameters of every factory ---------------------------------------------------------
#
# Every optimizer, transformation, wrapper, schedule, clip and callback factory exported by
# fdl.optim, fdl.optim.schedules and fdl.train.callbacks (found by its return annotation) is called
# with one hyperparameter wrong at a time: the wrong values of its annotated type
# (tests/sweep.py bad_values) and, from the tables below, the values outside its range. The call
# itself must raise a library error whose path begins with the factory's name; a raw exception, a
# warning, or a factory that returns is a defect.

_FACTORY_RESULTS = ("GradientTransformation", "Optimizer", "Schedule", "Callback")


def _factories() -> dict[str, Callable[..., object]]:
    found: dict[str, Callable[..., object]] = {}
    for module in (optim, optim.schedules, train.callbacks):
        for name in module.__all__:
            f = getattr(module, name)
            if inspect.isfunction(f) and str(inspect.signature(f).return_annotation).startswith(
                _FACTORY_RESULTS
            ):
                found.setdefault(f.__name__, f)  # an alias (sgdr) is swept under its function's name
    return found


FACTORIES = _factories()

#: Good values for the arguments that have no default (and for those a fault needs to make sense).
_GOOD: dict[str, object] = {
    "learning_rate": 0.1,
    "inner": optim.sgd(0.1),
    "transform": optim.scale(1.0),
    "every_k": 2,
    "decay": 0.9,
    "weight_decay": 0.01,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "factor": 0.5,
    "mask": optim.weights_only,
    "schedule": optim.constant_schedule(0.1),
    "value": 0.1,
    "init_value": 1.0,
    "end_value": 0.0,
    "peak_value": 1.0,
    "max_value": 1.0,
    "decay_rate": 0.5,
    "power": 1.0,
    "transition_steps": 10,
    "decay_steps": 100,
    "warmup_steps": 10,
    "first_period": 10,
    "total_steps": 100,
    "path": "run.npz",
}

#: Out of range for a parameter of this name in every factory that has one.
_OUT_OF_RANGE: dict[str, list[object]] = {
    "b1": [-0.1, 1.5],
    "b2": [-0.1, 1.5],
    "rho": [-0.1, 1.5],
    "alpha": [-0.1, 1.5],
    "dampening": [-0.1, 1.5],
    "pct_start": [0.0, 1.0],
    "d": [0.5],
    "beta2_decay": [0.5],
    "every_k": [0],
    "sync_period": [0],
    "patience": [-1],
    "every": [0],
    "total_steps": [0],
    "transition_steps": [0],
    "decay_steps": [0],
    "warmup_steps": [0],
    "first_period": [0],
    "period_mult": [0],
    "own_vector_from": [0],
    "batch_size": [0],
    "monitor": [""],
    "path": [""],
    "mode": ["sideways"],
    "threshold_mode": ["sideways"],
    "anneal_strategy": ["sideways"],
}

#: Out of range in one factory only (the same name means something else elsewhere).
_OUT_OF_RANGE_IN: dict[tuple[str, str], list[object]] = {
    ("reduce_on_plateau", "factor"): [0.0, 1.0, -0.5],
    ("ema_params", "decay"): [-0.1, 1.5],
    ("early_stopping", "patience"): [0],
    ("exponential_decay", "decay_rate"): [0.0],
    ("warmup_cosine_decay", "warmup_steps"): [100],  # not below decay_steps
}

#: Float parameters that may be negative; every other float parameter must refuse -0.1.
_SIGNED = {"factor", "value", "init_value", "end_value", "peak_value", "max_value", "beta2_decay", "d"}

#: Parameters whose value is a function or a part: anything else there is refused.
_PARTS = {"inner", "transform", "mask", "schedule"}


def _faults(factory: str, param: inspect.Parameter) -> list[object]:
    annotation = str(param.annotation)
    wrong = bad_values(annotation)
    if param.name in _PARTS:
        wrong = [3, "sgd"] + ([] if "None" in annotation else [None])
    wrong += _OUT_OF_RANGE.get(param.name, []) + _OUT_OF_RANGE_IN.get((factory, param.name), [])
    kind = annotation.replace(" | None", "")
    if kind in ("float", "LR", "float | Schedule") and param.name not in _SIGNED:
        wrong.append(-0.1)
    return list({repr(v): v for v in wrong}.values())  # each value once


def _swept_parameters(f: Callable[..., object]) -> list[inspect.Parameter]:
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in inspect.signature(f).parameters.values() if p.kind in named]


def _call_with(f: Callable[..., object], name: str, value: object) -> Callable[[], object]:
    # Every other argument without a default gets its good value (positional-or-keyword ones by name).
    kwargs: dict[str, object] = {
        p.name: _GOOD[p.name] for p in _swept_parameters(f) if p.default is p.empty and p.name != name
    }
    if f is optim.warmup_cosine_decay and name == "warmup_steps":
        kwargs["decay_steps"] = 100
    return partial(f, **kwargs, **{name: value})


def _defects(name: str) -> list[str]:
    f = FACTORIES[name]
    defects = []
    for param in _swept_parameters(f):
        for value in _faults(name, param):
            outcome = refusal(_call_with(f, param.name, value))
            where = f"{name}({param.name}={value!r})"
            if isinstance(outcome, str):
                defects.append(f"{where}: {outcome}")
            elif not str(outcome).startswith(name):
                defects.append(f"{where}: the error does not name {name}: {outcome}")
    return defects


def _has_faults(name: str, f: Callable[..., object]) -> bool:
    return any(_faults(name, p) for p in _swept_parameters(f))


def test_every_factory_is_swept() -> None:
    # The sweep finds the factories by introspection: make sure it finds them all.
    expected = {"adam", "sgd", "lars", "scale_by_adam", "trace", "clip", "lookahead", "reduce_on_plateau"}
    expected |= {"cosine_decay", "one_cycle", "join_schedules", "early_stopping", "save_checkpoints"}
    assert expected <= FACTORIES.keys()
    for name, f in FACTORIES.items():
        missing = [p.name for p in _swept_parameters(f) if p.default is p.empty and p.name not in _GOOD]
        swept = [p.name for p in _swept_parameters(f) if _faults(name, p)]
        assert not missing or name in _NOT_CALLED_ALONE, f"{name}: no good value for {missing}"
        assert swept or name in _NOTHING_TO_SWEEP, f"{name}: no parameter is swept"


#: Factories whose required arguments are structures (sequences of schedules, label mappings,
#: networks and data); their scalar arguments have no bad values to try, or they are swept elsewhere.
_NOT_CALLED_ALONE = {"join_schedules", "piecewise_constant", "partition", "inject_hyperparams", "validation"}
_NOTHING_TO_SWEEP = {"chain", "named_chain"} | _NOT_CALLED_ALONE  # *parts only: see the test below


@pytest.mark.parametrize(
    "name", sorted(n for n, f in FACTORIES.items() if n not in _NOT_CALLED_ALONE and _has_faults(n, f))
)
def test_factories_refuse_bad_hyperparameters_when_called(name: str) -> None:
    defects = _defects(name)
    assert not defects, f"{len(defects)} defects:\n" + "\n".join(defects)


def test_structured_factories_refuse_bad_arguments() -> None:
    # The factories _NOT_CALLED_ALONE leaves out, one wrong argument each.
    s = optim.constant_schedule(0.1)
    net, loss, data = NET, fdl.losses.softmax_cross_entropy, (np.ones((2, 4)), np.zeros(2, np.int64))
    calls = {
        "join_schedules(boundaries not increasing)": call(optim.join_schedules, [s, s, s], [5, 2]),
        "join_schedules(one schedule too few)": call(optim.join_schedules, [s], [5]),
        "join_schedules(a string boundary)": call(optim.join_schedules, [s, s], ["5"]),
        "join_schedules(a number for a schedule)": call(optim.join_schedules, [s, 0.1], [5]),
        "piecewise_constant(NaN scale)": call(optim.piecewise_constant, 1.0, {5: float("nan")}),
        "piecewise_constant(negative boundary)": call(optim.piecewise_constant, 1.0, {-5: 0.1}),
        "piecewise_constant(not a mapping)": call(optim.piecewise_constant, 1.0, [5, 0.1]),
        "piecewise_constant(NaN init_value)": call(optim.piecewise_constant, float("nan"), {5: 0.1}),
        "partition(labels a number)": call(optim.partition, {"a": optim.sgd(0.1)}, 3),
        "partition(transforms a list)": call(optim.partition, [optim.sgd(0.1)], optim.weights_only),
        "inject_hyperparams(a string)": call(optim.inject_hyperparams, optim.sgd, learning_rate="0.1"),
        "inject_hyperparams(NaN)": call(optim.inject_hyperparams, optim.sgd, learning_rate=float("nan")),
        "inject_hyperparams(not a factory)": call(optim.inject_hyperparams, 3, learning_rate=0.1),
        "validation(batch_size 0)": call(train.callbacks.validation, net, loss, data, batch_size=0),
        "validation(batch_size True)": call(train.callbacks.validation, net, loss, data, batch_size=True),
        "validation(prefix None)": call(train.callbacks.validation, net, loss, data, prefix=None),
        "validation(metrics a list)": call(train.callbacks.validation, net, loss, data, metrics=[3]),
        "validation(net a function)": call(train.callbacks.validation, loss, loss, data),
        "chain(a number)": call(optim.chain, optim.scale(1.0), 3),
        "named_chain(a number)": call(optim.named_chain, ("a", 3)),
        "named_chain(a name twice)": call(
            optim.named_chain, ("a", optim.scale(1.0)), ("a", optim.scale(2.0))
        ),
        "named_chain(a number as name)": call(optim.named_chain, (3, optim.scale(1.0))),
        "named_chain(not a pair)": call(optim.named_chain, optim.scale(1.0)),
    }
    defects = [f"{what}: {outcome}" for what, c in calls.items() if isinstance(outcome := refusal(c), str)]
    assert not defects, "\n".join(defects)
