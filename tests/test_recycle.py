"""_recycle.empty: large arrays in slabs of memory that no array uses any more, never in one still used."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import _recycle
from functional_dl._recycle import RECYCLE_FROM, empty, release

LARGE = (RECYCLE_FROM // 4,)  # float32 entries of one slab's size


def _address(a: np.ndarray) -> int:
    address: int = a.__array_interface__["data"][0]
    return address


@pytest.fixture(autouse=True)
def _no_kept_slabs() -> Iterator[None]:
    release()
    yield
    release()


def test_a_large_array_reuses_the_slab_of_one_that_is_gone() -> None:
    a = empty(LARGE, np.float32)
    where = _address(a)
    del a
    b = empty((2, LARGE[0] // 2), np.float32)  # another shape of the same size
    assert _address(b) == where and b.shape == (2, LARGE[0] // 2) and b.dtype == np.float32
    assert b.flags.c_contiguous and b.flags.writeable


def test_a_slab_still_used_by_an_array_or_a_view_is_never_handed_out() -> None:
    a = empty(LARGE, np.float32)
    view = a[10:].reshape(-1)
    del a
    b = empty(LARGE, np.float32)
    assert not np.shares_memory(b, view)  # the view keeps the first slab in use
    frozen = empty(LARGE, np.float32)
    frozen.flags.writeable = False  # as optimizers hand out their params
    c = empty(LARGE, np.float32)
    assert not np.shares_memory(c, frozen) and not np.shares_memory(c, b)
    del view
    d = empty(LARGE, np.float32)
    e = empty(LARGE, np.float32)
    assert len({_address(x) for x in (b, frozen, c, d, e)}) == 5


def test_small_arrays_are_plain_numpy_arrays() -> None:
    a = empty((RECYCLE_FROM // 8 - 1,), np.float64)
    assert a.base is None and a.flags.owndata


def test_no_more_free_slabs_are_kept_than_are_in_use() -> None:
    arrays = [empty(LARGE, np.float32) for _ in range(4)]
    del arrays
    kept = empty(LARGE, np.float32)  # one in use, one free one kept, two dropped
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 2
    assert release() == 1
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 1
    del kept


def test_a_fused_optimizer_steps_in_the_slabs_of_two_steps_before() -> None:
    # 2 arrays of 2**18 entries: their new moments and params come from kept slabs, and once
    # a state is dropped its slabs hold the state after next.
    params = {f"{i}.w": np.full(1 << 18, 0.5, np.float32) for i in range(2)}
    grads = {k: np.ones_like(p) for k, p in params.items()}
    opt = fdl.optim.adam(1e-3)
    state = opt.init(params)
    addresses = []
    for _ in range(4):
        state, new = opt.update(state, grads)
        addresses.append({_address(p) for p in new.values()})
    assert addresses[2] == addresses[0] and addresses[3] == addresses[1]
    assert not addresses[0] & addresses[1]
    plain = fdl.optim.optimizer(
        fdl.optim.chain(fdl.optim.scale_by_adam(), fdl.optim.scale_by_learning_rate(1e-3))
    )
    reference = plain.init(params)
    for _ in range(4):
        reference, expected = plain.update(reference, grads)
    fdl.testing.assert_bitwise_equal(new, expected, "params")
