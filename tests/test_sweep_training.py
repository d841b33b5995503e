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
from tests.sweep import masked, matrix, plain_subclass, refused, snapshot, strict, unchanged

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
