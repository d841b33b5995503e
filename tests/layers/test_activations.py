"""Activations beyond the registry: stability at +-1e4, kinks, tails, and bad hyperparameters.

Finite differences, dtypes, purity, pickling and the PyTorch comparison of every activation run
from the registry (``cases.py``, ``test_contract.py``, ``test_torch.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import ShapeError
from functional_dl.layers._erf import erf, erfc, normal_cdf

ACTIVATIONS: dict[str, Callable[[], fdl.Layer[Any]]] = {
    "identity": L.identity,
    "relu": L.relu,
    "leaky_relu": L.leaky_relu,
    "elu": L.elu,
    "selu": L.selu,
    "gelu": L.gelu,
    "gelu_tanh": lambda: L.gelu("tanh"),
    "sigmoid": L.sigmoid,
    "tanh": L.tanh,
    "softplus": L.softplus,
    "silu": L.silu,
    "hard_sigmoid": L.hard_sigmoid,
    "hard_tanh": L.hard_tanh,
    "softmax": L.softmax,
    "log_softmax": L.log_softmax,
}

EXTREMES = np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, 1e4, 1e4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_finite_at_plus_minus_1e4_without_warnings(name: str, dtype: Any) -> None:
    layer = ACTIVATIONS[name]()
    x = EXTREMES.astype(dtype)
    y, cache = layer.forward({}, x)  # pytest turns any floating-point warning into an error
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(dx).all()


def test_softmax_rows_sum_to_one_at_extremes() -> None:
    for dtype in (np.float32, np.float64):
        y, _ = L.softmax().forward({}, EXTREMES.astype(dtype))
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6 if dtype == np.float32 else 1e-15)
        np.testing.assert_array_equal(y[0], [0.5, 0.0, 0.0, 0.5])
        log_y, _ = L.log_softmax().forward({}, EXTREMES.astype(dtype))
        assert float(log_y[0, 1]) == pytest.approx(-2e4 - math.log(2))
        np.testing.assert_allclose(np.exp(log_y).sum(axis=1), 1.0, rtol=1e-6)


def test_known_values_at_extremes() -> None:
    x = np.array([-1e4, 1e4])
    assert L.softplus().forward({}, x)[0].tolist() == [0.0, 1e4]
    assert L.silu().forward({}, x)[0].tolist() == [-0.0, 1e4]
    assert L.gelu().forward({}, x)[0].tolist() == [-0.0, 1e4]
    assert L.elu().forward({}, x)[0].tolist() == [-1.0, 1e4]
    assert L.hard_sigmoid().forward({}, x)[0].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("make", "x", "slope"),
    [
        (L.relu, 0.0, 0.0),
        (lambda: L.leaky_relu(0.2), 0.0, 0.2),
        (L.hard_sigmoid, -3.0, 0.0),
        (L.hard_sigmoid, 3.0, 0.0),
        (L.hard_tanh, 1.0, 0.0),
        (L.hard_tanh, -1.0, 0.0),
        (lambda: L.elu(0.5), 0.0, 0.5),
    ],
)
def test_gradient_at_kinks_is_pytorchs(make: Callable[[], fdl.Layer[Any]], x: float, slope: float) -> None:
    layer = make()
    _, cache = layer.forward({}, np.array([x]))
    assert layer.backward({}, cache, np.array([1.0]))[0].tolist() == [slope]


def test_erf_and_normal_cdf_against_the_standard_library() -> None:
    xs = np.linspace(-8, 8, 4001)
    np.testing.assert_allclose(erf(xs), [math.erf(v) for v in xs], rtol=1e-15, atol=0)
    np.testing.assert_allclose(erfc(xs), [math.erfc(v) for v in xs], rtol=1e-14, atol=0)
    # The lower tail keeps relative accuracy: Phi(-30) is about 4.9e-198, not 0 or noise.
    assert normal_cdf(np.array(-30.0)) == pytest.approx(0.5 * math.erfc(30 / math.sqrt(2)), rel=1e-14)


@pytest.mark.torch
def test_torch_hardsigmoid_gradient_uses_a_float32_constant() -> None:
    # Why the registry compares hard_sigmoid with F.relu6(x + 3) / 6 instead of F.hardsigmoid:
    # the latter's backward multiplies by float32(1/6) even for float64 tensors.
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.hardsigmoid(x).backward()
    assert x.grad is not None
    assert float(x.grad[0]) == float(np.float32(1 / 6))
    _, cache = L.hard_sigmoid().forward({}, np.array([0.5]))
    assert L.hard_sigmoid().backward({}, cache, np.array([1.0]))[0][0] == 1 / 6


def test_softmax_axis_out_of_range() -> None:
    with pytest.raises(ShapeError, match=r"^softmax: axis 2 is out of range for input of shape \(3, 4\)"):
        L.softmax(axis=2).forward({}, np.ones((3, 4)))
    net = fdl.serial(L.dense(2), L.log_softmax(axis=-3))
    _, params = net.init(fdl.random.key(0), (None, 3))
    with pytest.raises(ShapeError, match=r"^1\.log_softmax: axis -3 is out of range"):
        net.forward(params, np.ones((2, 3), np.float32))


def test_flatten_and_reshape_shapes_and_errors() -> None:
    assert L.flatten().init(fdl.random.key(0), (None, 2, 3, 4))[0] == (None, 24)
    assert L.reshape((4, -1)).init(fdl.random.key(0), (None, 24))[0] == (None, 4, 6)
    with pytest.raises(ShapeError, match=r"^reshape: cannot reshape 24 features into \(5, -1\)"):
        L.reshape((5, -1)).init(fdl.random.key(0), (None, 24))
    with pytest.raises(ShapeError, match=r"^reshape: cannot reshape 10 features into \(3, 4\)"):
        L.reshape((3, 4)).forward({}, np.ones((2, 10)))
    with pytest.raises(ValueError, match="reshape: shape needs positive sizes"):
        L.reshape((-1, -1))
    x = np.arange(24.0).reshape(2, 3, 4)
    y, cache = L.flatten().forward({}, x)
    assert np.shares_memory(x, y)  # a view: no data moved
    dx, _ = L.flatten().backward({}, cache, y)
    assert np.array_equal(dx, x)


@pytest.mark.parametrize(
    "build",
    [
        lambda: L.softplus(0.0),
        lambda: L.hard_tanh(1.0, -1.0),
        lambda: L.gelu("erf"),  # type: ignore[arg-type]
    ],
)
def test_bad_hyperparameters(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"^(softplus|hard_tanh|gelu):"):
        build()


@pytest.mark.parametrize("n", [7, 1 << 16])  # below and above the size taken from recycled memory
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_equals_its_formula_on_both_sides_of_the_recycling_size(n: int, dtype: Any) -> None:
    x = fdl.random.normal(fdl.random.key(0), (2, n), dtype)
    dy = fdl.random.normal(fdl.random.key(1), (2, n), dtype)
    y, cache = L.relu().forward({}, x)
    dx, _ = L.relu().backward({}, cache, dy)
    assert y.dtype == dx.dtype == dtype
    assert y.tobytes() == np.maximum(x, 0).tobytes()
    assert dx.tobytes() == (dy * (x > 0)).tobytes()
