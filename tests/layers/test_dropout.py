"""Dropout: PyTorch's meaning of ``rate``, inverted scaling, keys, and evaluation mode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import LayerError, ShapeError

TRAIN = fdl.Context(train=True, key=fdl.random.key(0))


def test_eval_mode_is_identity() -> None:
    x = fdl.random.normal(fdl.random.key(1), (3, 4), np.float32)
    y, cache = L.dropout(0.5).forward({}, x)
    assert y is x
    dy = np.ones_like(x)
    dx, grads = L.dropout(0.5).backward({}, cache, dy)
    assert dx is dy
    assert grads == {}


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_rate_is_the_drop_probability_with_inverted_scaling(rate: float) -> None:
    x = np.ones((200, 500), np.float64)
    y, _ = L.dropout(rate).forward({}, x, TRAIN)
    dropped = float(np.mean(y == 0))
    # 1e5 Bernoulli draws: the standard error is below 0.0016, so 0.01 is over six of them.
    assert abs(dropped - rate) < 0.01
    assert np.allclose(y[y != 0], 1 / (1 - rate), rtol=1e-15)
    assert abs(float(y.mean()) - 1.0) < 0.05


def test_backward_uses_the_forward_mask() -> None:
    layer = L.dropout(0.4)
    x = fdl.random.normal(fdl.random.key(2), (6, 7), np.float64)
    y, cache = layer.forward({}, x, TRAIN)
    dy = fdl.random.normal(fdl.random.key(3), (6, 7), np.float64)
    dx, _ = layer.backward({}, cache, dy)
    mask = y / x
    np.testing.assert_allclose(dx, dy * mask, rtol=1e-14, atol=0)
    assert set(np.round(mask.ravel(), 12)) <= {0.0, round(1 / 0.6, 12)}


def test_same_key_same_mask_across_dtypes_and_different_key_different_mask() -> None:
    layer = L.dropout(0.5)
    x64 = np.ones((4, 50), np.float64)
    y64, _ = layer.forward({}, x64, TRAIN)
    y32, _ = layer.forward({}, x64.astype(np.float32), TRAIN)
    assert np.array_equal(y64 == 0, y32 == 0)
    y_again, _ = layer.forward({}, x64, TRAIN)
    assert np.array_equal(y64, y_again)
    other, _ = layer.forward({}, x64, fdl.Context(train=True, key=fdl.random.key(1)))
    assert not np.array_equal(y64, other)


def test_rate_zero_and_one() -> None:
    x = np.ones((3, 3), np.float32)
    assert np.array_equal(L.dropout(0.0).forward({}, x, TRAIN)[0], x)
    y, cache = L.dropout(1.0).forward({}, x, TRAIN)
    assert not y.any()
    assert y.dtype == np.float32
    assert not L.dropout(1.0).backward({}, cache, x)[0].any()


def test_training_without_a_key_names_the_layer_and_path() -> None:
    with pytest.raises(LayerError, match=r"^dropout: training mode needs a random key"):
        L.dropout(0.5).forward({}, np.ones((2, 2)), fdl.Context(train=True))
    net = fdl.serial(L.dense(3), L.dropout(0.5))
    _, params = net.init(fdl.random.key(0), (None, 2))
    with pytest.raises(LayerError, match=r"^1\.dropout: training mode needs a random key"):
        net.forward(params, np.ones((2, 2), np.float32), fdl.Context(train=True))


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.5", True])
def test_bad_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="dropout: rate"):
        L.dropout(rate)  # type: ignore[arg-type]


def test_float32_preserved_and_finite_at_large_inputs() -> None:
    x = np.full((4, 5), 1e4, np.float32)
    x[::2] = -1e4
    y, cache = L.dropout(0.3).forward({}, x, TRAIN)
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    dx, _ = L.dropout(0.3).backward({}, cache, np.ones_like(y))
    assert dx.dtype == np.float32


@settings(deadline=None, max_examples=25)
@given(total=st.integers(1, 12), cut=st.integers(0, 12), rate=st.sampled_from([0.2, 0.5]))
def test_a_share_of_the_batch_gets_its_rows_of_the_batch_mask(total: int, cut: int, rate: float) -> None:
    # A batch split in two at ``cut`` and run as two shares draws exactly the one-call masks.
    cut = min(cut, total)
    # batch_rows must reach the layer through serial (relu is exact row by row, unlike a matmul).
    net = fdl.serial(L.relu(), L.dropout(rate))
    _, params = net.init(fdl.random.key(4), (None, 3))
    x = fdl.random.normal(fdl.random.key(5), (total, 3), np.float32) + np.float32(3.0)
    ctx = fdl.Context(train=True, key=fdl.random.key(6))
    whole, _ = net.forward(params, x, ctx)
    head, _ = net.forward(params, x[:cut], ctx._replace(batch_rows=(0, total)))
    tail, _ = net.forward(params, x[cut:], ctx._replace(batch_rows=(cut, total)))
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)


@pytest.mark.parametrize("rows", [(-1, 4), (2, 4), (0, 2)])
def test_batch_rows_that_do_not_hold_the_input_are_refused(rows: tuple[int, int]) -> None:
    x = np.ones((3, 2), np.float32)
    with pytest.raises(ShapeError, match=r"dropout: batch_rows .* 3 rows"):
        L.dropout(0.5).forward({}, x, TRAIN._replace(batch_rows=rows))
