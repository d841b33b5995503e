"""embedding: lookups, the gradient against finite differences, np.add.at and PyTorch, padding, bad ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import errors
from functional_dl import layers as L
from functional_dl.layers.embedding import _row_sums, _row_sums_reference
from functional_dl.testing import check_gradients, check_purity

Lookup = tuple[int, int, np.ndarray, int | None, int]


@st.composite
def _lookups(draw: st.DrawFn) -> Lookup:
    """``(vocab, dim, ids, padding_idx, seed)`` with repeated ids, ids of shape (batch, time) or (batch,)."""
    vocab = draw(st.integers(1, 6))
    dim = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(2, 3), (1, 1), (3,), (2, 2, 2)]))
    size = int(np.prod(shape))
    ids = np.array(draw(st.lists(st.integers(0, vocab - 1), min_size=size, max_size=size)))
    padding = draw(st.none() | st.integers(-vocab, vocab - 1))
    return vocab, dim, ids.reshape(shape), padding, draw(st.integers(0, 2**16))


@given(_lookups())
def test_finite_differences_and_no_gradient_for_ids(case: Lookup) -> None:
    vocab, dim, ids, padding, seed = case
    layer = L.embedding(vocab, dim, padding_idx=padding, dtype=np.float64)
    out_shape, params = layer.init(fdl.random.key(seed), (None, *ids.shape[1:]))
    assert out_shape == (None, *ids.shape[1:], dim)
    report = check_gradients(layer, params, ids)  # also requires dx to be None for the ids
    assert report.passed, report.describe()
    assert report.checked == vocab * dim
    check_purity(layer, params, ids)


@given(_lookups())
def test_lookup_and_padding(case: Lookup) -> None:
    vocab, dim, ids, padding, seed = case
    layer = L.embedding(vocab, dim, padding_idx=padding)
    _, params = layer.init(fdl.random.key(seed), (None, *ids.shape[1:]))
    y, cache = layer.forward(params, ids)
    assert y.dtype == np.float32 and y.shape == (*ids.shape, dim)
    np.testing.assert_array_equal(y, params["weight"][ids])
    _, grads = layer.backward(params, cache, np.ones_like(y))
    if padding is not None:
        assert not params["weight"][padding].any()
        assert not grads["weight"][padding].any()  # exactly zero, however often it occurs
    counts = np.bincount(ids.reshape(-1), minlength=vocab).astype(np.float32)
    if padding is not None:
        counts[padding] = 0
    np.testing.assert_array_equal(grads["weight"], np.repeat(counts[:, None], dim, axis=1))


@given(n=st.integers(0, 300), vocab=st.integers(1, 50), dtype=st.sampled_from([np.float32, np.float64]))
def test_sorted_row_sums_agree_with_add_at(n: int, vocab: int, dtype: Any) -> None:
    ids = fdl.random.generator(fdl.random.key(n)).integers(0, vocab, size=n)
    dy = fdl.random.normal(fdl.random.key(n + 1), (n, 5), dtype)
    fast, plain = _row_sums(ids, dy, vocab), _row_sums_reference(ids, dy, vocab)
    assert fast.dtype == plain.dtype == dtype
    counts = np.bincount(ids, minlength=vocab)[:, None]
    bound = 4 * counts * np.finfo(dtype).eps * _row_sums_reference(ids, np.abs(dy), vocab)
    assert np.all(np.abs(fast - plain) <= bound)


def test_matches_torch_embedding() -> None:
    torch = pytest.importorskip("torch")
    layer = L.embedding(7, 4, padding_idx=2, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 5))
    ids = np.array([[1, 2, 2, 6, 0], [2, 3, 1, 1, 6]])
    module = torch.nn.Embedding(7, 4, padding_idx=2, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(params["weight"])))
    out = module(torch.from_numpy(ids))
    y, cache = layer.forward(params, ids)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-15, atol=0)
    dy = fdl.random.normal(fdl.random.key(1), y.shape, np.float64)
    out.backward(torch.from_numpy(dy))
    _, grads = layer.backward(params, cache, dy)
    scale = float(np.abs(module.weight.grad.numpy()).max())
    assert float(np.abs(grads["weight"] - module.weight.grad.numpy()).max()) <= 1e-10 * scale


def test_feeds_a_recurrent_layer() -> None:
    net = fdl.serial(L.embedding(10, 3), L.gru(4))
    out_shape, params = net.init(fdl.random.key(0), (None, 6))
    assert out_shape == (None, 6, 4) and "0.weight" in params and "1.weight_ih_l0" in params
    ids = np.array([[1, 2, 3, 0, 0, 9]])
    report = check_gradients(net, fdl.params.cast(params, np.float64), ids)
    assert report.passed, report.describe()


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        (np.array([[1, 7]]), errors.DomainError, r"ids must lie in \[0, 6\] \(the vocabulary\), got 1\.\.7"),
        (np.array([[-1, 2]]), errors.DomainError, r"ids must lie in \[0, 6\]"),
        (np.array([[1.0, 2.0]]), errors.DTypeError, "expected integer ids, got float64"),
        (np.array([[True, False]]), errors.DTypeError, "expected integer ids, got bool"),
        ([[1, 2]], errors.DTypeError, "expected integer ids, got list"),
        (np.array(3), errors.ShapeError, "expected ids of shape"),
    ],
)
def test_bad_ids_are_refused_naming_the_layer(ids: Any, error: type[Exception], message: str) -> None:
    net = fdl.serial(L.embedding(7, 2), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 2))
    with pytest.raises(error, match=rf"^0\.embedding: {message}"):
        net.forward(params, ids)


def test_bad_arguments_and_gradients_are_refused() -> None:
    with pytest.raises(ValueError, match="num_embeddings must be a positive int"):
        L.embedding(0, 3)
    with pytest.raises(ValueError, match="padding_idx must be an id in"):
        L.embedding(3, 2, padding_idx=3)
    layer = L.embedding(3, 2)
    _, params = layer.init(fdl.random.key(0), (None, 2))
    _, cache = layer.forward(params, np.array([[0, 1]]))
    with pytest.raises(errors.ShapeError, match=r"^embedding: expected dy of shape \(1, 2, 2\)"):
        layer.backward(params, cache, np.ones((1, 2, 3), np.float32))
    with pytest.raises(errors.DTypeError, match=r"^embedding: expected dy of dtype float32"):
        layer.backward(params, cache, np.ones((1, 2, 2)))
