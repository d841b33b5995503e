"""The gradient checker must catch wrong gradients, not just pass right ones."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.layers.dense import DenseCache
from functional_dl.testing import check_gradients, check_loss_gradients, numerical_gradient

_DENSE = L.dense(3)


def _broken_backward(params: fdl.Params, cache: DenseCache, dy: fdl.Array, /) -> tuple[fdl.Array, fdl.Params]:
    dx, grads = _DENSE.backward(params, cache, dy)
    return dx, {**grads, "b": grads["b"] * 1.01}  # a 1% error in one gradient


def test_detects_a_wrong_gradient_and_names_it() -> None:
    good = _DENSE
    broken = good._replace(backward=_broken_backward)
    _, params = good.init(fdl.random.key(0), (None, 4))
    x = fdl.random.normal(fdl.random.key(1), (5, 4), np.float64)
    assert check_gradients(good, params, x).passed
    report = check_gradients(broken, params, x, raise_on_failure=False)
    assert not report.passed
    assert report.worst == "b"
    with pytest.raises(AssertionError, match=r"FAILED .* worst b\["):
        check_gradients(broken, params, x)


def _wrong_mse(pred: fdl.Array, target: fdl.Array) -> tuple[fdl.Array, fdl.Array]:
    value, grad = fdl.losses.mean_squared_error(pred, target)
    return value, grad * 2


def test_detects_a_wrong_loss_gradient() -> None:
    pred, target = np.array([[0.3, -1.0]]), np.array([[1.0, 2.0]])
    assert check_loss_gradients(fdl.losses.mean_squared_error, pred, target).passed
    assert not check_loss_gradients(_wrong_mse, pred, target, raise_on_failure=False).passed


def test_numerical_gradient_of_a_known_function() -> None:
    v = np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(numerical_gradient(lambda a: float(np.sum(a**3)), v), 3 * v**2, rtol=1e-8)


def test_checks_in_float64_even_for_float32_params() -> None:
    layer = L.dense(2, dtype=np.float32)
    _, params = layer.init(fdl.random.key(0), (None, 3))
    report = check_gradients(layer, params, np.ones((2, 3), np.float32))
    assert report.passed and report.checked == 6 + 8


def test_partial_layers_still_checked() -> None:
    layer = L.dense(2)._replace(forward=partial(L.dense(2).forward))
    _, params = layer.init(fdl.random.key(0), (None, 2))
    assert check_gradients(layer, params, np.ones((1, 2))).passed
