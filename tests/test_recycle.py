"""_recycle.empty: large arrays in slabs of memory that no array uses any more, never in one still used."""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import functional_dl as fdl
from functional_dl import _recycle
from functional_dl import layers as L
from functional_dl._recycle import RECYCLE_FROM, empty, release
from functional_dl.types import Layer

# ``functional_dl.optim.fuse`` is also the name of the function the package exports.
fuse_module = importlib.import_module("functional_dl.optim.fuse")

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


def test_as_many_slabs_are_kept_as_were_in_use_at_once() -> None:
    arrays = [empty(LARGE, np.float32) for _ in range(4)]
    del arrays
    kept = empty(LARGE, np.float32)  # one in use, the three free ones kept for the next busy moment
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 4
    again = [empty(LARGE, np.float32) for _ in range(3)]  # the busy moment again: no new slab
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 4
    assert len({_address(a) for a in (kept, *again)}) == 4
    del again
    assert release() == 3
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 1
    del kept


def test_a_small_cnn_step_takes_no_fresh_pages() -> None:
    # The relu mask and arrays between 128 KiB and 1 MiB took fresh pages on every step before
    # (about 200 page faults per step here).
    resource = pytest.importorskip("resource")
    L = fdl.layers
    net = fdl.serial(L.conv2d(8, 3, padding=1), L.relu(), L.max_pool2d(2), L.flatten(), L.dense(10))
    x = fdl.random.normal(fdl.random.key(0), (32, 1, 28, 28), np.float32)
    y = np.arange(32) % 10
    opt = fdl.optim.adam(1e-3)
    _, params = net.init(fdl.random.key(1), (None, 1, 28, 28))
    step = fdl.train.train_step(net, fdl.losses.softmax_cross_entropy, opt)
    state = fdl.train.init_train_state(opt, params)
    for _ in range(3):
        state, _ = step(state, (x, y), fdl.random.key(2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        state, _ = step(state, (x, y), fdl.random.key(2))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 100


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


_getrefcount = sys.getrefcount


def _one_too_few(obj: object) -> int:
    return _getrefcount(obj) - 2  # this frame's argument as well as the caller's


def _one_too_many(obj: object) -> int:
    return _getrefcount(obj)


@pytest.mark.parametrize("count", [_one_too_few, _one_too_many])
def test_the_import_time_self_check_refuses_counts_that_read_otherwise(
    count: Callable[[object], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _recycle._counts_read_as_expected()
    monkeypatch.setattr(sys, "getrefcount", count)
    assert not _recycle._counts_read_as_expected()


def test_with_recycling_off_every_array_is_plain_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_recycle, "RECYCLING", False)
    a = empty(LARGE, np.float32)
    assert a.base is None and a.flags.owndata and not _recycle._SLABS


def test_object_dtypes_are_never_recycled() -> None:
    a = empty((RECYCLE_FROM,), object)
    assert a.base is None and not _recycle._SLABS


def test_the_slabs_kept_are_bounded_in_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_recycle, "MAX_SLABS", 3)
    held = [empty(LARGE, np.float32) for _ in range(5)]  # all in use: the last two are not kept
    assert len(_recycle._SLABS[RECYCLE_FROM]) == 3
    assert held[3].base is None and held[4].base is None
    del held


def test_the_slabs_kept_are_bounded_in_bytes_whatever_sizes_are_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_recycle, "MAX_BYTES", 4 * RECYCLE_FROM)
    for k in range(1, 40):  # a new size every time (a varying sequence length, say), each dropped
        empty((RECYCLE_FROM // 4 + k,), np.float32)
        kept = sum(size * len(slabs) for size, slabs in _recycle._SLABS.items())
        assert kept <= 4 * RECYCLE_FROM
    held = [empty(LARGE, np.float32) for _ in range(6)]  # in use: past the bound, plain arrays
    assert sum(a.base is None for a in held) == 2


def test_threads_taking_and_dropping_slabs_at_once_never_share_one() -> None:
    # Each thread fills its arrays with its own number, takes more, and checks they still hold it.
    def work(i: int) -> bool:
        ok = True
        for _ in range(200):
            mine = [empty(LARGE, np.float32) for _ in range(3)]
            for a in mine:
                a.fill(i)
            more = empty(LARGE, np.float32)
            more.fill(-1)
            ok = ok and all(bool((a == i).all()) for a in mine)
        return ok

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))


def _poisoned(shape: tuple[int, ...], dtype: npt.DTypeLike) -> fdl.Array:
    # What a recycled slab may hold: anything. NaN spreads through any float read; 99 is no tap.
    dt = np.dtype(dtype)
    return np.full(shape, np.nan if dt.kind == "f" else 99, dt)


def _zeroed(shape: tuple[int, ...], dtype: npt.DTypeLike) -> fdl.Array:
    return np.zeros(shape, dtype)


def _conv_cases() -> list[tuple[str, Layer[Any], tuple[int, ...]]]:
    return [
        ("conv2d padded", L.conv2d(6, 3, padding=1), (3, 4, 9, 8)),
        (
            "conv2d strided dilated grouped",
            L.conv2d(4, 3, stride=2, dilation=2, groups=2, padding=(2, 1)),
            (2, 4, 11, 9),
        ),
        ("conv2d first layer (per sample)", L.conv2d(8, 5, padding=2), (3, 1, 12, 12)),
        ("conv2d empty batch", L.conv2d(4, 3, padding=1), (0, 2, 6, 6)),
        ("conv1d", L.conv1d(5, 4, stride=3, padding=1), (2, 3, 17)),
        ("depthwise", L.conv2d(6, 3, padding=1, groups=3), (2, 3, 7, 7)),
        ("max_pool2d remainder", L.max_pool2d(3), (2, 3, 10, 11)),
        ("max_pool2d one tap on an axis", L.max_pool2d((1, 2)), (2, 3, 5, 6)),
        ("max_pool2d padded", L.max_pool2d(3, stride=2, padding=1), (2, 3, 9, 8)),
        ("relu", L.relu(), (4, RECYCLE_FROM // 16)),  # 4 x 2**13 float32: recycled
        ("relu small", L.relu(), (4, 7)),  # a plain np.maximum
    ]


CONV_CASES = _conv_cases()
#: Cases whose paths allocate plain arrays of their own: they check that this stays harmless.
_OWN_ARRAYS = {"depthwise", "max_pool2d padded", "relu small"}


@pytest.mark.parametrize("case", range(len(CONV_CASES)), ids=[c[0] for c in CONV_CASES])
def test_every_layer_writes_each_entry_of_its_recycled_arrays_before_reading_it(
    case: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, layer, shape = CONV_CASES[case]
    _, params = layer.init(fdl.random.key(0), (None, *shape[1:]))
    x = fdl.random.normal(fdl.random.key(1), shape, np.float32)
    calls: list[tuple[int, ...]] = []

    def run(make: Callable[[tuple[int, ...], npt.DTypeLike], fdl.Array]) -> list[bytes]:
        def counted(shape: tuple[int, ...], dtype: npt.DTypeLike) -> fdl.Array:
            calls.append(shape)
            return make(shape, dtype)

        with monkeypatch.context() as m:
            m.setattr(_recycle, "empty", counted)
            y, cache = layer.forward(params, x)
            dy = fdl.random.normal(fdl.random.key(2), y.shape, np.float32)
            dx, grads = layer.backward(params, cache, dy)
        return [a.tobytes() for a in (y, dx, *grads.values())]

    assert run(_poisoned) == run(_zeroed)
    if CONV_CASES[case][0] not in _OWN_ARRAYS:
        assert calls  # the layer did take recycled arrays, so the comparison checks something


def test_the_fused_optimizer_writes_each_entry_of_its_recycled_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fuse_module, "BLOCK", 7)  # blocks of 7, the last one shorter
    params = {"0.w": np.linspace(-1, 1, 60).reshape(6, 10), "1.b": np.linspace(0, 1, 30), "2.b": np.ones(3)}
    grads = {k: np.cos(p) for k, p in params.items()}
    opt = fuse_module._fused_optimizer(
        fdl.optim.chain(
            fdl.optim.scale_by_adam(),
            fdl.optim.add_decayed_weights(0.1),
            fdl.optim.scale_by_learning_rate(0.1),
        ),
        own_vector_from=20,
    )

    def run(make: Callable[[tuple[int, ...], npt.DTypeLike], fdl.Array]) -> list[bytes]:
        with monkeypatch.context() as m:
            m.setattr(_recycle, "empty", make)
            state = opt.init(params)
            for _ in range(3):
                state, new = opt.update(state, grads)
        return [a.tobytes() for a in new.values()] + [repr(fdl.optim.unfused(state.inner)).encode()]

    assert run(_poisoned) == run(_zeroed)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_process_forked_while_a_thread_takes_a_slab_can_take_slabs_itself() -> None:
    held = empty(LARGE, np.float32)  # a slab in use, inherited by the child
    with _recycle._LOCK[0]:  # as if another thread were inside empty() at the fork
        pid = os.fork()
        if pid == 0:  # the child: take a slab, check it is not the one in use, and report
            fresh = empty(LARGE, np.float32)
            os._exit(0 if not np.shares_memory(fresh, held) else 1)
    for _ in range(200):  # up to 10 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child waited forever for the lock it inherited")
    assert os.waitstatus_to_exitcode(status) == 0
