"""Positional encodings: the sinusoidal formula, the learned table's gradient, max_len, bad input.

Shapes, dtypes, finite differences and purity run from the registry (``cases.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DTypeError, ShapeError
from functional_dl.testing import check_gradients


def _reference(t: int, d: int) -> np.ndarray:
    """``PE[pos, j]`` entry by entry, as "Attention is all you need" writes it."""
    pe = np.zeros((t, d))
    for pos in range(t):
        for j in range(d):
            i = j // 2
            angle = pos / 10000 ** (2 * i / d)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 9), st.sampled_from([np.float32, np.float64]))
def test_sinusoidal_adds_the_papers_formula(batch: int, t: int, d: int, dtype: Any) -> None:
    layer = L.sinusoidal_positional_encoding()
    out_shape, params = layer.init(fdl.random.key(0), (None, t, d))
    assert out_shape == (None, t, d) and not params
    x = np.random.default_rng(t * d).standard_normal((batch, t, d)).astype(dtype)
    y, cache = layer.forward(params, x)
    assert y.dtype == dtype
    np.testing.assert_allclose(
        y - x, np.broadcast_to(_reference(t, d), x.shape), rtol=0, atol=1e-6 if dtype == np.float32 else 1e-14
    )
    dy = np.ones_like(y)
    dx, grads = layer.backward(params, cache, dy)
    assert dx is dy and not grads


def test_sinusoidal_base_changes_the_wavelengths() -> None:
    x = np.zeros((1, 3, 4))
    a = L.sinusoidal_positional_encoding().forward({}, x)[0]
    b = L.sinusoidal_positional_encoding(base=100.0).forward({}, x)[0]
    assert np.array_equal(a[:, :, :2], b[:, :, :2])  # i = 0: wavelength 2 pi whatever the base
    assert not np.allclose(a[:, 1:, 2:], b[:, 1:, 2:])
    with pytest.raises(ValueError, match="base must be a number above 1"):
        L.sinusoidal_positional_encoding(base=1.0)


@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3))
def test_learned_adds_its_rows_and_trains_only_the_rows_used(batch: int, t: int, d: int, extra: int) -> None:
    layer = L.learned_positional_encoding(t + extra, dtype=np.float64)
    _, params = layer.init(fdl.random.key(t), (None, t, d))
    assert params["weight"].shape == (t + extra, d)
    rng = np.random.default_rng(t)
    x = rng.standard_normal((batch, t, d))
    y, cache = layer.forward(params, x)
    assert np.array_equal(y, x + params["weight"][None, :t])
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    assert np.array_equal(dx, dy)
    assert np.array_equal(grads["weight"][:t], dy.sum(axis=0))
    assert (grads["weight"][t:] == 0).all()
    assert check_gradients(layer, params, x).passed


def test_learned_refuses_a_sequence_longer_than_max_len() -> None:
    layer = L.learned_positional_encoding(4, dtype=np.float64)
    with pytest.raises(
        ShapeError, match="learned_positional_encoding: a sequence of 5 steps is longer than max_len 4"
    ):
        layer.init(fdl.random.key(0), (None, 5, 3))
    _, params = layer.init(fdl.random.key(0), (None, 4, 3))
    net = fdl.serial(layer)
    with pytest.raises(
        ShapeError, match=r"^0\.learned_positional_encoding: a sequence of 6 steps is longer than max_len 4"
    ):
        net.forward({"0.weight": params["weight"]}, np.ones((1, 6, 3)))
    assert net.forward({"0.weight": params["weight"]}, np.ones((1, 3, 3)))[0].shape == (1, 3, 3)


@pytest.mark.parametrize(
    "make", [L.sinusoidal_positional_encoding, lambda: L.learned_positional_encoding(8, dtype=np.float64)]
)
@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ((np.ones((2, 3, 4)), np.zeros((2, 3), bool)), DTypeError, "got a tuple"),
        (np.ones((2, 3)), ShapeError, "of shape (batch, time, d_model), got (2, 3)"),
        ([[[1.0] * 4] * 3], DTypeError, "got list"),
        (np.ones((2, 3, 4), np.int64), DTypeError, "floating-point input"),
    ],
)
def test_bad_input_is_the_librarys_error_naming_the_path(
    make: Any, x: Any, error: type[Exception], message: str
) -> None:
    layer = make()
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    net = fdl.serial(layer)
    with pytest.raises(error, match=rf"^0\.{layer.name}: ") as info:
        net.forward({f"0.{k}": v for k, v in params.items()}, x)
    assert message in str(info.value)


def test_learned_refuses_the_wrong_feature_size_and_bad_hyperparameters() -> None:
    layer = L.learned_positional_encoding(8, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, time, 4\), got \(1, 3, 5\)"):
        layer.forward(params, np.ones((1, 3, 5)))
    with pytest.raises(ShapeError, match="expected an input shape"):
        layer.init(fdl.random.key(0), (None, 4))
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        L.learned_positional_encoding(0)
