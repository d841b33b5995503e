"""fuse over large arrays: each array's own vector, shared out over threads, gives the same bits.

The plain form of a fused update is one call of the inner transformation on every vector; the
fast path (:func:`functional_dl.optim.fuse._update_shared_out`) runs it on subsets of the vectors
on separate threads and joins the states. They must agree bit for bit, and so must one thread
and two through the public optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import optim as O
from functional_dl import threads
from functional_dl.optim.fuse import (
    FusedState,
    _layout,
    _LazyGather,
    _scatter,
    _update_shared_out,
    fuse,
    unfused,
)
from functional_dl.testing import assert_bitwise_equal, snapshot

T = TypeVar("T")
R = TypeVar("R")


def _no_limit() -> None:
    return None


def _two_cores() -> int:
    return 2


@pytest.fixture(autouse=True)
def _restore_setting() -> Iterator[None]:
    yield
    threads.set_num_threads(None)


def _params(shapes: list[tuple[int, ...]], seed: int) -> dict[str, fdl.Array]:
    rng = np.random.default_rng(seed)
    return {f"{i}.w": rng.normal(size=s).astype(np.float32) for i, s in enumerate(shapes)}


def _chains() -> list[O.GradientTransformation[tuple[object, ...]]]:
    return [
        O.chain(O.scale_by_adam(amsgrad=True), O.scale_by_learning_rate(1e-2)),
        O.chain(O.add_decayed_weights(0.1), O.trace(0.9, nesterov=True), O.scale_by_learning_rate(0.1)),
    ]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("index", range(2))
def test_shared_out_equals_one_call_bit_for_bit(index: int, n: int) -> None:
    params = _params([(5, 6), (40,), (3, 3), (7,)], 0)
    tx = fuse(_chains()[index], own_vector_from=10)
    state = tx.init(params)
    assert isinstance(state, FusedState)
    layout = state.layout
    assert len(layout) == 3  # (5, 6) and (40,) alone, the two small ones joined
    grads = _params([p.shape for p in params.values()], 1)
    flat = {g: np.concatenate([grads[k].ravel() for k, _ in entries]) for g, entries in layout}
    kept = snapshot(flat)
    plain_updates, plain_state = tx.update(grads, state, params)
    one = _chains()[index].update(flat, state.inner, _LazyGather(params, layout))
    shared = _update_shared_out(_chains()[index], flat, state.inner, params, layout=layout, n=n)
    assert_bitwise_equal(shared[0], one[0], "updates")
    assert_bitwise_equal(flat, kept, "inputs")
    for a, b in ((shared[1], one[1]), (unfused(FusedState(layout, shared[1])), unfused(plain_state))):
        assert repr(a) == repr(b)  # every array and scalar of the states, structure included
    assert_bitwise_equal(_scatter(shared[0], layout), plain_updates, "updates per key")


def test_one_thread_and_two_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite pins BLAS to one thread, which the library respects; lift that for this test only.
    monkeypatch.setattr(threads, "_pool_limits", _no_limit)
    monkeypatch.setattr(threads, "_cores", _two_cores)
    threads.set_num_threads(2)
    shared_out: list[int] = []

    def counting_map(fn: Callable[[T], R], items: Sequence[T], n: int) -> list[R]:
        shared_out.append(n)
        return real_map(fn, items, n)

    real_map = threads.parallel_map
    monkeypatch.setattr(threads, "parallel_map", counting_map)
    params = _params([(300, 300), (300, 300), (300, 300), (10,)], 2)
    assert sum(p.size for p in params.values()) >= 1 << 18  # enough work to be shared out
    opt = fdl.optim.adam(1e-2, weight_decay=0.1)
    results = []
    for n in (1, 2):
        threads.set_num_threads(n)
        state = opt.init(params)
        for step in range(3):
            state, new = opt.update(state, _params([p.shape for p in params.values()], 10 + step))
        results.append((new, unfused(state.inner)))
    assert shared_out == [2, 2, 2]  # the two-thread run shared every step out, the other none
    assert_bitwise_equal(results[0][0], results[1][0], "params")
    assert repr(results[0][1]) == repr(results[1][1])


def test_large_arrays_keep_their_own_vector_and_small_ones_share() -> None:
    params = _params([(256, 256), (4,), (3,)], 3)
    layout = _layout(params)
    assert [g for g, _ in layout] == ["float32:0.w", "float32"]
    lazy = _LazyGather(params, layout)
    assert np.shares_memory(lazy["float32:0.w"], params["0.w"])  # a view, not a copy
    state = fuse(O.scale_by_adam()).init(params)
    assert O.find_state(state, O.ScaleByAdamState).mu["0.w"].shape == (256, 256)
