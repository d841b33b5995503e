"""The data-parallel arithmetic in one process: shares cover the batch and combine to its gradient."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import losses
from functional_dl.distributed._shards import Share, run_share, share_bounds, tree_combine
from functional_dl.train import value_and_grad
from tests.distributed import runs


@given(n=st.integers(0, 200), shares=st.integers(1, 9))
def test_shares_cut_the_batch_into_contiguous_near_equal_ranges(n: int, shares: int) -> None:
    bounds = share_bounds(n, shares)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [b - a for a, b in bounds]
    assert len(bounds) == max(1, min(n, shares))
    assert max(sizes) - min(sizes) <= 1


@settings(deadline=None, max_examples=20)
@given(n=st.integers(1, 40), shares=st.integers(1, 5), dropout=st.sampled_from([0.0, 0.4]))
def test_combined_shares_are_the_whole_batch_gradient(n: int, shares: int, dropout: float) -> None:
    x, y = runs.blobs(50)
    net = runs.mlp(dropout)
    params, _ = runs.init64(net, (None, 6))
    ids = fdl.random.permutation(fdl.random.key(n), 50)[:n]
    key = fdl.random.key(9)
    loss = losses.softmax_cross_entropy
    parts = [
        run_share(params, {}, (x, y), Share(ids[a:b], (a, n), key, True), net=net, loss=loss)
        for a, b in share_bounds(n, shares)
    ]
    got = tree_combine(parts)
    want = value_and_grad(net, loss)(params, x[ids], y[ids], fdl.Context(train=True, key=key))
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)
    np.testing.assert_allclose(got.pred, want.pred, rtol=1e-12, atol=1e-15)
    for k in params:
        np.testing.assert_allclose(got.grads[k], want.grads[k], rtol=1e-11, atol=1e-14)
    if len(parts) == 1:  # one share: the same numbers bit for bit
        fdl.testing.assert_bitwise_equal(got.grads, want.grads, "grads")
