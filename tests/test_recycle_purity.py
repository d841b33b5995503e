"""Recycled memory never changes an array that is still reachable, through the public API.

Each scenario trains or runs a network whose large arrays (params, moments, activations, im2col
copies, gradients) come from :mod:`functional_dl._recycle`, keeps some results of an early step
in one of the ways a user might (the arrays, views of them, other libraries' wrappers, caches,
optimizer and training states, recordings, checkpoints, states kept by a callback), runs more
steps, and reads what it kept. The bytes read must be those of the same run with recycling off,
in which no memory is ever handed out twice. A control run that counts one holder too few (so a
slab in use looks free) must change them, which shows each scenario really recycles.
"""

from __future__ import annotations

import pickle
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import _recycle, threads
from functional_dl import layers as L
from functional_dl import optim as O
from functional_dl.types import Array, Layer

Keeper = Callable[[Array], object]


def _as_strided(a: Array) -> object:
    return np.lib.stride_tricks.as_strided(a, shape=a.shape[::-1], strides=a.strides[::-1])


def _memoryview(a: Array) -> object:
    return memoryview(a)  # type: ignore[arg-type]  # numpy arrays export the buffer protocol


def _pickled_out_of_band(a: Array) -> object:
    # Pickle protocol 5 hands the array's memory over as is: the copy loaded in this process is
    # the same memory (a contiguous array), held through a PickleBuffer.
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(a, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=buffers)


def _frombuffer(a: Array) -> object:
    # The buffer protocol wants contiguous memory: a strided gradient is read through its base.
    return np.frombuffer(a if a.flags.c_contiguous else a.base, np.uint8)  # type: ignore[arg-type]


def _torch(a: Array) -> object:
    torch = pytest.importorskip("torch")  # only these cases need it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns that the params are read-only
        return torch.from_numpy(a)


#: The ways of holding on to an array's memory: the array, a NumPy view of several kinds, and
#: the wrappers of the buffer protocol, of NumPy's own functions and of torch.
KEEPERS: dict[str, Keeper] = {
    "array": np.asarray,
    "slice": lambda a: a[1:],
    "transposed": lambda a: a.T,
    "as_strided": _as_strided,
    "memoryview": _memoryview,
    "frombuffer": _frombuffer,
    "torch.from_numpy": _torch,
    "dlpack": np.from_dlpack,
    "pickle protocol 5, out of band": _pickled_out_of_band,
}


def _arrays(tree: object) -> Iterator[Array]:
    """Every array in ``tree`` (nested tuples, NamedTuples and mappings), in order."""
    if isinstance(tree, np.ndarray):
        yield tree
    elif isinstance(tree, Mapping):
        for v in tree.values():
            yield from _arrays(v)
    elif isinstance(tree, tuple):
        for v in tree:
            yield from _arrays(v)


def _read(kept: object) -> bytes:
    """The bytes of everything in ``kept`` (arrays, wrappers, NamedTuples, mappings), in order."""
    if type(kept).__module__.startswith("torch"):  # a torch.Tensor
        tensor: Any = kept
        return bytes(tensor.numpy().tobytes())
    if isinstance(kept, memoryview):
        return kept.tobytes()
    return b"".join(a.tobytes() for a in _arrays(kept))


def _big_params(seed: int) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    # Each at least a slab (1 MiB) and longer than a block, so the fused optimizer recycles them.
    return {
        "0.w": rng.normal(size=(512, 512)).astype(np.float32),
        "1.b": rng.normal(size=(300_000,)).astype(np.float32),
    }


def _optimizer_run(keep: Keeper) -> list[object]:
    """Adam steps, keeping the params given to init, and the params and moments of the first step."""
    opt = fdl.optim.adam(1e-2, weight_decay=0.1)
    params = _big_params(0)
    state = opt.init(params)
    state, first = opt.update(state, _big_params(1))
    moments = O.find_state(state, O.ScaleByAdamState)
    kept: list[object] = [
        keep(params["0.w"]),
        keep(first["0.w"]),
        keep(first["1.b"]),
        keep(moments.mu["0.w"]),
        keep(moments.nu["1.b"]),
    ]
    del first, moments
    for step in range(2, 6):
        state, _ = opt.update(state, _big_params(step))
    return kept


def _net() -> Layer[Any]:
    return fdl.serial(L.conv2d(8, 3, padding=1), L.relu(), L.max_pool2d(3), L.flatten(), L.dense(2))


def _layers_run(keep: Keeper) -> list[object]:
    """Forward and backward passes, keeping the first one's output, cache, input grad and grads."""
    net = _net()
    _, params = net.init(fdl.random.key(0), (None, 4, 32, 32))
    kept: list[object] = []
    for step in range(4):
        x = fdl.random.normal(fdl.random.key(10 + step), (32, 4, 32, 32), np.float32)
        y, cache = net.forward(params, x)
        dx, grads = net.backward(params, cache, np.ones_like(y))
        if step == 0:
            conv_y, _ = L.conv2d(8, 3, padding=1).forward({"w": params["0.w"], "b": params["0.b"]}, x)
            kept = [keep(conv_y), keep(dx), keep(grads["0.w"]), cache]
        del y, cache, dx, grads
    return kept


def _train_run(keep: Keeper) -> list[object]:
    """train_step, keeping the first training state whole (params, optimizer state, step)."""
    net = fdl.serial(L.dense(600), L.relu(), L.dense(500), L.relu(), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 500))
    opt = fdl.optim.adam(1e-3)
    step_fn = fdl.train.train_step(net, fdl.losses.mean_squared_error, opt)
    state = fdl.train.init_train_state(opt, params)
    kept: list[object] = []
    for step in range(4):
        x = fdl.random.normal(fdl.random.key(step), (512, 500), np.float32)
        target = fdl.random.normal(fdl.random.key(50 + step), (512, 2), np.float32)
        state, _ = step_fn(state, (x, target), fdl.random.key(100 + step))
        if step == 0:
            kept = [state, keep(state.params["0.w"])]
    return kept


def _record_run(keep: Keeper) -> list[object]:
    """inspect.record between steps, keeping the first recording."""
    net = _net()
    _, params = net.init(fdl.random.key(0), (None, 4, 32, 32))
    kept: list[object] = []
    for step in range(3):
        x = fdl.random.normal(fdl.random.key(step), (32, 4, 32, 32), np.float32)
        target = np.zeros((32, 2), np.float32)
        rec = fdl.inspect.record(net, fdl.losses.mean_squared_error, params, x, target)
        if step == 0:
            kept = [rec, keep(rec.activations["1"])]
        del rec
    return kept


def _keep_every_state(states: object, end: fdl.train.EpochEnd, /) -> fdl.train.CallbackResult:
    assert isinstance(states, tuple)
    return fdl.train.CallbackResult((*states, end.train_state), {})


def _no_states(train_state: object, /) -> object:
    return ()


def _fit_run(keep: Keeper) -> list[object]:
    """fit with a callback that keeps the training state of every epoch, as early stopping does."""
    net = fdl.serial(L.dense(600), L.relu(), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 500))
    opt = fdl.optim.adam(1e-3)
    x = fdl.random.normal(fdl.random.key(1), (1024, 500), np.float32)
    target = fdl.random.normal(fdl.random.key(2), (1024, 2), np.float32)
    result = fdl.train.fit(
        net,
        fdl.losses.mean_squared_error,
        opt,
        fdl.train.init_train_state(opt, params),
        (x, target),
        key=fdl.random.key(3),
        epochs=3,
        batch_size=512,
        callbacks=[fdl.train.Callback(_no_states, _keep_every_state)],
        progress="none",
    )
    states = result.callback_states[0]
    assert isinstance(states, tuple) and len(states) == 3
    return [states, keep(states[0].params["0.w"])]


SCENARIOS: dict[str, Callable[[Keeper], list[object]]] = {
    "optimizer": _optimizer_run,
    "layers": _layers_run,
    "train_step": _train_run,
    "inspect.record": _record_run,
    "fit callback": _fit_run,
}


@pytest.fixture(autouse=True)
def _no_kept_slabs() -> Iterator[None]:
    _recycle.release()
    yield
    _recycle.release()


def _bytes_of(
    run: Callable[[Keeper], list[object]], keep: Keeper, monkeypatch: pytest.MonkeyPatch, **patch: object
) -> list[bytes]:
    with monkeypatch.context() as m:
        for name, value in patch.items():
            m.setattr(_recycle, name, value)
        _recycle.release()
        return [_read(k) for k in run(keep)]


@pytest.mark.parametrize("keeper", list(KEEPERS))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_what_a_user_keeps_is_never_written_again(
    scenario: str, keeper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, keep = SCENARIOS[scenario], KEEPERS[keeper]
    assert _recycle.RECYCLING  # else this test compares plain numpy.empty with itself
    assert _bytes_of(run, keep, monkeypatch) == _bytes_of(run, keep, monkeypatch, RECYCLING=False)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_counting_one_holder_too_few_would_corrupt_what_is_kept(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: a slab with one array on it taken for free. The scenario then reuses memory a
    # kept array still shows, so the comparison above can fail.
    run, keep = SCENARIOS[scenario], KEEPERS["slice"]
    assert _bytes_of(run, keep, monkeypatch, _FREE=_recycle._FREE + 1) != _bytes_of(
        run, keep, monkeypatch, RECYCLING=False
    )


def test_a_checkpoint_saved_mid_run_loads_as_it_was_saved(tmp_path: Path) -> None:
    opt = fdl.optim.adam(1e-2)
    state = opt.init(_big_params(0))
    state, _ = opt.update(state, _big_params(1))
    fdl.checkpoint.save(tmp_path / "step1.npz", state)
    expected = _read(state)
    for step in range(2, 5):
        state, _ = opt.update(state, _big_params(step))
    loaded = fdl.checkpoint.load(tmp_path / "step1.npz", state)
    assert _read(loaded) == expected


def test_arrays_pickled_to_a_worker_are_copies_that_later_steps_do_not_touch() -> None:
    # What a worker process receives is unpickled, so it owns fresh memory of its own.
    opt = fdl.optim.adam(1e-2)
    state = opt.init(_big_params(0))
    state, params = opt.update(state, _big_params(1))
    sent = pickle.loads(pickle.dumps((state, params)))
    expected = _read(sent)
    assert not np.shares_memory(sent[1]["0.w"], params["0.w"])
    del params
    for step in range(2, 5):
        state, _ = opt.update(state, _big_params(step))
    assert _read(sent) == expected


def _lift_thread_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_pool_limits", lambda: None)
    monkeypatch.setattr(threads, "_cores", lambda: 2)


def _two_runs() -> list[list[bytes]]:
    return [[_read(k) for k in _optimizer_run(np.asarray)], [_read(k) for k in _layers_run(np.asarray)]]


def test_two_user_threads_training_at_once_get_the_bits_of_one_after_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each user thread also shares its optimizer's blocks out over two of the library's threads,
    # so four threads take slabs from and give them back to the same lists at once.
    _lift_thread_limits(monkeypatch)
    threads.set_num_threads(2)
    try:
        one_after_the_other = [_two_runs(), _two_runs()]
        results: list[list[list[bytes]]] = [[], []]

        def work(i: int) -> None:
            results[i] = _two_runs()

        workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        threads.set_num_threads(None)
    assert results == one_after_the_other
