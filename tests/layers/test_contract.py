"""Contract tests run over every layer in the registry (``cases.py``).

For each layer, on hypothesis-generated shapes and values:
* the shape contract: ``forward``'s output matches ``init``'s ``out_shape``, ``dx`` matches ``x``,
  ``grads`` has exactly the keys and shapes of ``params``;
* dtypes: float32 in gives float32 out everywhere, and float64 likewise;
* central finite differences in float64 for ``dx`` and every gradient;
* purity: inputs unchanged, repeated calls bit-identical;
* pickling: a layer survives a pickle round trip and computes the same thing.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.testing import check_gradients, check_purity
from functional_dl.testing import strategies as fst
from tests.layers.cases import LAYER_CASES, LayerCase
from tests.layers.inputs import draw_case

ids = [c.id for c in LAYER_CASES]


@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
@given(data=st.data())
def test_shape_contract(case: LayerCase, data: st.DataObject) -> None:
    layer, params, x, ctx, out_shape = draw_case(case, data, np.float32)
    y, cache = layer.forward(params, x, ctx)
    assert y.shape == (x.shape[0], *out_shape[1:])
    assert out_shape[0] is None
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    if case.ids:
        assert dx is None  # integer ids have no gradient
    else:
        assert dx.shape == x.shape
    assert grads.keys() == params.keys()
    for k in params:
        assert grads[k].shape == params[k].shape, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
@given(data=st.data())
def test_dtype_preserved(case: LayerCase, dtype: Any, data: st.DataObject) -> None:
    layer, params, x, ctx, _ = draw_case(case, data, dtype)
    y, cache = layer.forward(params, x, ctx)
    dx, grads = layer.backward(params, cache, np.ones_like(y))
    assert y.dtype == dtype
    assert case.ids or dx.dtype == dtype
    for k, g in grads.items():
        assert g.dtype == dtype, k
    for k, s in layer.buffers_of(cache).items():
        assert s.dtype == dtype, k


@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
@given(data=st.data())
def test_finite_differences(case: LayerCase, data: st.DataObject) -> None:
    layer, params, x, ctx, _ = draw_case(case, data, np.float64)
    report = check_gradients(layer, params, x, ctx=ctx)
    assert report.passed, report.describe()
    assert report.checked == (0 if case.ids else x.size) + fdl.params.num_params(params)


@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
@given(data=st.data())
def test_purity(case: LayerCase, data: st.DataObject) -> None:
    layer, params, x, ctx, _ = draw_case(case, data, np.float32)
    check_purity(layer, params, x, ctx=ctx)


@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
def test_pickle_round_trip(case: LayerCase) -> None:
    layer = case.make()
    key = fdl.random.key(3)
    in_shape: fdl.Shape = (None, *case.example_features)
    _, params, state = layer.init_with_buffers(key, in_shape)
    shape = (2, *case.example_features)
    x: Any = (
        fdl.random.normal(fdl.random.key(4), shape, np.float32)
        if not case.ids
        else np.arange(np.prod(shape)).reshape(shape) % case.ids
    )
    ctx = fdl.Context(train=case.train, key=key if case.train else None, buffers=state)
    clone = pickle.loads(pickle.dumps(layer))
    y1, _ = layer.forward(params, x, ctx)
    y2, _ = clone.forward(pickle.loads(pickle.dumps(params)), x, ctx)
    assert y1.tobytes() == y2.tobytes()
    _, params2, _ = clone.init_with_buffers(key, in_shape)
    assert fdl.params.allclose(params, params2, rtol=0)


@pytest.mark.parametrize("case", LAYER_CASES, ids=ids)
@given(data=st.data())
def test_param_grads_equal_backward_grads(case: LayerCase, data: st.DataObject) -> None:
    """``param_grads`` (which may skip ``dx``) gives exactly the grads of ``backward``."""
    layer, params, x, ctx, _ = draw_case(case, data, np.float64)
    y, cache = layer.forward(params, x, ctx)
    dy = fdl.random.normal(fdl.random.key(5), y.shape, np.float64)
    _, expected = layer.backward(params, cache, dy)
    got = layer.param_grads(params, cache, dy)
    assert got.keys() == expected.keys()
    for k in expected:
        assert got[k].tobytes() == expected[k].tobytes(), k


@pytest.mark.parametrize("case", [c for c in LAYER_CASES if not c.make().reads_context], ids=lambda c: c.id)
@given(data=st.data())
def test_context_free_layers_ignore_the_context(case: LayerCase, data: st.DataObject) -> None:
    """A layer declaring ``reads_context=False`` computes the same in training mode with a key."""
    layer, params, x, _, _ = draw_case(case, data, np.float32)
    train = fdl.Context(train=True, key=data.draw(fst.keys()))
    y_eval, _ = layer.forward(params, x)
    y_train, _ = layer.forward(params, x, train)
    assert y_eval.tobytes() == y_train.tobytes()


def test_layers_that_read_the_context_say_so() -> None:
    assert L.dropout(0.5).reads_context
    assert L.batch_norm1d().reads_context
    assert fdl.serial(L.dense(2), L.dropout(0.5)).reads_context
    assert not fdl.serial(L.dense(2), L.relu()).reads_context
