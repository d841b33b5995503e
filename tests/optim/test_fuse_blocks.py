"""A fused update run block by block gives the bits of one call on the whole vectors.

The plain form is ``inner.update(flat, state, params)``; the fast path
(:func:`functional_dl.optim._fuse_blocks.update_in_blocks`) calls ``inner.update`` once per block
of every vector and copies the results into new vectors. An elementwise transformation computes
each entry from that entry alone, so the two must agree bit for bit, for any block size and any
thread count; a transformation that declared itself elementwise but was not would fail here.
Blocks are made tiny (a few entries) so that every vector is cut, unevenly; ``test_fuse_threads.py``
runs every elementwise transformation of the registry through the blocked path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import optim as O
from functional_dl.optim._fuse_blocks import BLOCK, update_in_blocks
from functional_dl.optim.base import add_update
from functional_dl.optim.fuse import _gather, _LazyGather, fuse
from functional_dl.testing import assert_bitwise_equal, snapshot
from functional_dl.testing import strategies as fst
from tests.optim.state_checks import arrays


def _chains() -> list[O.GradientTransformation[tuple[object, ...]]]:
    # The chains of the named adaptive optimizers (``aliases.py``), L2 and decoupled decay included.
    lr = O.scale_by_learning_rate(1e-2)
    decay = O.add_decayed_weights(0.1)
    return [
        O.chain(O.scale_by_adam(), lr),
        O.chain(decay, O.scale_by_adam(amsgrad=True), lr),
        O.chain(O.scale_by_adam(), decay, lr),  # adamw
        O.chain(O.scale_by_nadam(), decay, lr),
        O.chain(O.scale_by_radam(), lr),
        O.chain(O.scale_by_rms(centered=True), O.trace(0.9), lr),
        O.chain(decay, O.trace(0.9, nesterov=True), lr),
    ]


@pytest.mark.parametrize("index", range(7))
@given(
    shapes=st.lists(fst.shapes(max_dims=2), min_size=1, max_size=4),
    block=st.integers(1, 7),
    n_threads=st.integers(1, 3),
    apply=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_blocks_give_the_bits_of_one_call(
    index: int, *, shapes: list[tuple[int, ...]], block: int, n_threads: int, apply: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params = {f"{i}.w": rng.normal(size=s).astype(np.float32) for i, s in enumerate(shapes)}
    inner = _chains()[index]
    state = fuse(inner, own_vector_from=5).init(params)
    layout, inner_state = state.layout, state.inner
    for _ in range(3):
        grads = {k: rng.normal(size=p.shape).astype(np.float32) for k, p in params.items()}
        flat, lazy = _gather(grads, layout), _LazyGather(params, layout)
        kept = snapshot(flat)
        # With ``apply``, every vector of one array alone gets its new params instead of updates.
        apply_to = {g: np.empty(flat[g].size, np.float32) for g, e in layout if apply and len(e) == 1}
        plain = inner.update(flat, inner_state, lazy)
        blocked = update_in_blocks(
            inner, flat, inner_state, lazy, layout=layout, n_threads=n_threads, block=block, apply_to=apply_to
        )
        expected = {g: add_update(lazy[g], u) if g in apply_to else u for g, u in plain[0].items()}
        assert_bitwise_equal(blocked[0], expected, "updates or new params")
        assert repr(blocked[1]) == repr(plain[1])  # every array and scalar, structure included
        assert_bitwise_equal(flat, kept, "inputs")
        state_arrays = arrays(blocked[1])
        for g, u in blocked[0].items():
            assert u.flags.c_contiguous and u.shape == flat[g].shape
            assert not any(np.shares_memory(u, a) for a in [*state_arrays.values(), *flat.values()])
        inner_state = plain[1]


@pytest.mark.parametrize(
    ("size", "calls"),
    [(BLOCK, [BLOCK]), (2 * BLOCK + 5, [BLOCK, BLOCK, 5])],
    ids=["one-block", "three-blocks"],
)
def test_a_vector_longer_than_a_block_is_updated_block_by_block(size: int, calls: list[int]) -> None:
    seen: list[int] = []
    adam = O.scale_by_adam()

    def counted(
        updates: fdl.Params, state: O.ScaleByAdamState, params: fdl.Params, /
    ) -> tuple[fdl.Params, O.ScaleByAdamState]:
        seen.append(sum(u.size for u in updates.values()))
        return adam.update(updates, state, params)

    tx = fuse(O.GradientTransformation(adam.init, counted, elementwise=True))
    params = {"w": np.zeros(size, np.float32)}
    tx.update({"w": np.ones(size, np.float32)}, tx.init(params), params)
    assert seen == calls
