"""``tie``: a parameter stored once and used twice; its gradient is the sum over both uses.

Shapes, dtypes, finite differences, purity and pickling of a tied network run from the layer
registry (``tests/layers/cases.py``); the language model's tie is tested in
``tests/layers/test_decoder_only.py``.
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
from functional_dl.combinators.tie import ties_of
from functional_dl.errors import ParamsError, ShapeError
from functional_dl.testing import check_gradients


def _untied(n: int) -> fdl.Layer[Any]:
    return fdl.serial(a=L.dense(n, dtype=np.float64), act=L.tanh(), b=L.dense(n, dtype=np.float64))


@given(n=st.integers(1, 4), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_the_tied_gradient_is_the_sum_of_the_untied_ones(n: int, batch: int, seed: int) -> None:
    tied = fdl.tie(_untied(n), {"b.w": "a.w"})
    _, params = tied.init(fdl.random.key(seed), (None, n))
    assert sorted(params) == ["a.b", "a.w", "b.b"]  # stored once
    copied = {**params, "b.w": params["a.w"].copy()}  # the untied network with the weight copied
    x = np.random.default_rng(seed).standard_normal((batch, n))
    y, cache = tied.forward(params, x)
    y_untied, cache_untied = _untied(n).forward(copied, x)
    assert y.tobytes() == y_untied.tobytes()
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx, grads = tied.backward(params, cache, dy)
    dx_untied, untied = _untied(n).backward(copied, cache_untied, dy)
    assert dx.tobytes() == dx_untied.tobytes()
    assert grads.keys() == params.keys()
    assert np.array_equal(grads["a.w"], untied["a.w"] + untied["b.w"])
    assert np.array_equal(grads["b.b"], untied["b.b"]) and np.array_equal(grads["a.b"], untied["a.b"])
    assert check_gradients(tied, params, x).passed
    assert np.array_equal(tied.param_grads(params, cache, dy)["a.w"], grads["a.w"])


def test_an_empty_tie_computes_as_the_layer_itself() -> None:
    net = _untied(3)
    _, params = net.init(fdl.random.key(0), (None, 3))
    x = np.random.default_rng(0).standard_normal((2, 3))
    y, cache = fdl.tie(net, {}).forward(params, x)
    y0, cache0 = net.forward(params, x)
    assert y.tobytes() == y0.tobytes()
    _, grads = fdl.tie(net, {}).backward(params, cache, np.ones_like(y))
    _, grads0 = net.backward(params, cache0, np.ones_like(y))
    fdl.testing.assert_bitwise_equal(grads, grads0, "grads")


def test_several_aliases_may_share_one_source() -> None:
    net = fdl.tie(
        fdl.serial(
            L.dense(3, dtype=np.float64), L.tanh(), L.dense(3, dtype=np.float64), L.dense(3, dtype=np.float64)
        ),
        {"2.w": "0.w", "3.w": "0.w"},
    )
    _, params = net.init(fdl.random.key(0), (None, 3))
    assert sorted(params) == ["0.b", "0.w", "2.b", "3.b"]
    assert check_gradients(net, params, np.random.default_rng(0).standard_normal((2, 3))).passed


def test_tied_params_are_refused_by_name() -> None:
    with pytest.raises(
        ParamsError,
        match=r"^tie: cannot tie 'b\.w' \(3, 4\) to 'a\.w' \(4, 3\): tied parameters need one shape",
    ):
        fdl.tie(fdl.serial(a=L.dense(4), b=L.dense(3)), {"b.w": "a.w"}).init(fdl.random.key(0), (None, 3))
    with pytest.raises(
        ParamsError, match=r"^tie: cannot tie 'c\.w' to 'a\.w': the network has no parameter 'c\.w'"
    ):
        fdl.tie(_untied(2), {"c.w": "a.w"}).init(fdl.random.key(0), (None, 2))
    tied = fdl.tie(_untied(2), {"b.w": "a.w"})
    _, params = tied.init(fdl.random.key(0), (None, 2))
    x = np.ones((1, 2))
    with pytest.raises(ParamsError, match=r"'b\.w' is tied to 'a\.w' and must not be in the params"):
        tied.forward({**params, "b.w": params["a.w"]}, x)
    with pytest.raises(ParamsError, match=r"missing \['a\.w'\] \(tied to 'b\.w'\)"):
        tied.forward({k: v for k, v in params.items() if k != "a.w"}, x)
    with pytest.raises(ShapeError, match=r"^a\.dense: "):  # errors inside pass through with their paths
        tied.forward(params, np.ones((1, 2, 3)))


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="ties must be a mapping"):
        fdl.tie(_untied(2), [("b.w", "a.w")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two different parameter keys"):
        fdl.tie(_untied(2), {"a.w": "a.w"})
    with pytest.raises(ValueError, match=r"'b\.w' is an alias, so it cannot be the source"):
        fdl.tie(_untied(2), {"b.w": "a.w", "a.b": "b.w"})
    with pytest.raises(TypeError, match="not a Layer"):
        fdl.tie(L.relu, {"b.w": "a.w"})  # type: ignore[arg-type]


def test_a_tied_network_is_data_inspectable_and_picklable() -> None:
    tied = fdl.tie(_untied(3), {"b.w": "a.w"})
    assert tied.name == "tie" and [c.segment for c in tied.children] == [""]
    assert tied.rebuild is not None
    _, params = tied.init(fdl.random.key(0), (None, 3))
    x = np.random.default_rng(0).standard_normal((2, 3))
    y, _ = tied.forward(params, x)
    again = tied.rebuild(tuple(c.layer for c in tied.children))
    assert again.forward(params, x)[0].tobytes() == y.tobytes()
    assert pickle.loads(pickle.dumps(tied)).forward(params, x)[0].tobytes() == y.tobytes()
    text = str(fdl.inspect.summary(tied, (None, 3)))
    assert "tie" in text and "b" in text
    record = fdl.inspect.record(tied, fdl.losses.mean_squared_error, params, x, np.zeros((2, 3)))
    assert record.grads.keys() == params.keys()
    assert record.activations["b"].shape == (2, 3)


def test_training_updates_the_one_weight_from_both_uses() -> None:
    tied = fdl.tie(_untied(2), {"b.w": "a.w"})
    _, params = tied.init(fdl.random.key(0), (None, 2))
    opt = fdl.optim.sgd(0.1)
    state = opt.init(params)
    x = np.random.default_rng(0).standard_normal((4, 2))
    y, cache = tied.forward(params, x)
    _, grads = tied.backward(params, cache, np.ones_like(y))
    _, new = opt.update(state, grads)
    assert sorted(new) == sorted(params)
    assert np.allclose(new["a.w"], params["a.w"] - 0.1 * grads["a.w"])


def test_ties_of_reads_the_mapping_back_from_a_tie_only() -> None:
    tied = fdl.tie(_untied(3), {"b.w": "a.w"})
    assert ties_of(tied) == {"b.w": "a.w"}
    assert tied.rebuild is not None
    rebuilt = tied.rebuild(tuple(c.layer for c in tied.children))
    assert ties_of(rebuilt) == {"b.w": "a.w"}
    assert ties_of(fdl.tie(_untied(3), {})) == {}
    assert ties_of(_untied(3)) == {}  # the children are not searched
    impostor = _untied(3)._replace(name="tie")  # named like a tie, built otherwise
    assert ties_of(impostor) == {}
