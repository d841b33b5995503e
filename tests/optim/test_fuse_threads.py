"""fuse over large arrays: each array's own vector, its blocks shared out over threads, same bits.

The plain form of a fused update is one call of the inner transformation on every vector; over
large arrays the fast path cuts the vectors into blocks and shares them out over the library's
threads (``test_fuse_blocks.py`` checks blocks against one call). One thread and two must give
the same bits through the public optimizer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import optim as O
from functional_dl import threads
from functional_dl.optim.fuse import FusedState, _fused_optimizer, _layout, _LazyGather, fuse, unfused
from functional_dl.testing import assert_bitwise_equal
from tests.optim.cases import TRANSFORM_CASES, TransformCase
from tests.optim.state_checks import assert_same_steps

# ``functional_dl.optim.fuse`` is also the name of the function the package exports.
fuse_module = importlib.import_module("functional_dl.optim.fuse")

ELEMENTWISE = [c for c in TRANSFORM_CASES if c.elementwise]

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


def test_one_thread_and_two_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite pins BLAS to one thread, which the library respects; lift that for this test only.
    monkeypatch.setattr(threads, "_pool_limits", _no_limit)
    monkeypatch.setattr(threads, "_cores", _two_cores)
    threads.set_num_threads(2)
    shared_out: list[tuple[int, int]] = []  # (threads, pieces of work) of each call

    def counting_map(fn: Callable[[T], R], items: Sequence[T], n: int) -> list[R]:
        shared_out.append((n, len(items)))
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
    # Each step deals out the first block of every vector, then the other blocks: on one thread
    # in the first run, shared between two in the second.
    assert shared_out == [(1, 1)] * 6 + [(2, 2)] * 6
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


def _registry_params() -> dict[str, fdl.Array]:
    # The keys the registry's transformations are built for, and one more; two dtypes.
    rng = np.random.default_rng(3)
    return {
        "0.w": rng.normal(size=(3, 2)).astype(np.float32),
        "0.b": rng.normal(size=4).astype(np.float32),
        "1.b": rng.normal(size=3).astype(np.float32),
        "2.w": rng.normal(size=(2, 3)),
    }


@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.id for c in ELEMENTWISE])
def test_every_elementwise_transformation_fused_in_blocks_equals_it_unfused(
    case: TransformCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fuse_module, "BLOCK", 3)  # every vector cut into blocks of 3
    monkeypatch.setattr(fuse_module, "_THREADED_FROM", 0)  # and shared out over the threads
    monkeypatch.setattr(threads, "_pool_limits", _no_limit)
    monkeypatch.setattr(threads, "_cores", _two_cores)
    threads.set_num_threads(2)
    params = _registry_params()
    blocked = _fused_optimizer(case.make(), own_vector_from=5)
    state = blocked.init(params).inner
    assert isinstance(state, FusedState)
    # 0.w and 2.w have vectors of their own (their new params made block by block), 0.b and 1.b
    # share one (their updates added afterwards).
    assert [len(entries) for _, entries in state.layout] == [1, 2, 1]
    assert_same_steps(O.optimizer(case.make()), blocked, params)
