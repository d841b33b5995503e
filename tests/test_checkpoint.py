from __future__ import annotations

import inspect
import io
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import checkpoint, optim
from functional_dl import layers as L
from functional_dl.errors import CheckpointError
from functional_dl.params import FrozenParams


def assert_tree_identical(a: object, b: object, path: str = "tree") -> None:
    """Same types all the way down and bit-identical arrays."""
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, np.ndarray | np.generic):
        assert isinstance(b, np.ndarray | np.generic)
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), path
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping)
        assert list(a) == list(b), path
        for k in a:
            assert_tree_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, tuple | list):
        assert isinstance(b, tuple | list)
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_tree_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert isinstance(b, float)
        assert a.hex() == b.hex(), path
    else:
        assert a == b, path


def _params(dtype: Any = np.float32) -> FrozenParams:
    net = fdl.serial(L.dense(4), L.relu(), L.dense(3))
    _, params = net.init(fdl.random.key(0), (None, 5))
    return fdl.params.cast(params, dtype)


def _grads(params: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    keys = fdl.random.split(fdl.random.key(seed), len(params))
    return {
        k: fdl.random.normal(kk, v.shape, v.dtype) for kk, (k, v) in zip(keys, params.items(), strict=True)
    }


def _build(factory: Callable[..., Any]) -> object:
    """Call an exported factory with the arguments its signature asks for, or return None."""
    params = list(inspect.signature(factory).parameters.values())
    required = [
        p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    first = params[0].name if params else ""
    if first == "learning_rate" and required in ([], ["learning_rate"]):
        return factory(0.01)
    if required == []:
        return factory()
    if required == ["inner"]:
        return factory(optim.adam(0.01).transform)
    if required == ["inner", "every_k"]:
        return factory(optim.adam(0.01).transform, 2)
    return None


def _all_optimizers() -> list[tuple[str, fdl.optim.Optimizer[Any]]]:
    """Every exported optimizer, and every exported transform (as a descent step), buildable from
    its signature alone; plus a scheduled sgd, momentum and injected hyperparameters."""
    found: list[tuple[str, fdl.optim.Optimizer[Any]]] = []
    for name in optim.__all__:
        factory = getattr(optim, name)
        if not inspect.isfunction(factory):
            continue
        try:
            built = _build(factory)
        except (TypeError, ValueError):
            continue
        if isinstance(built, optim.Optimizer):
            found.append((name, built))
        elif isinstance(built, optim.GradientTransformation):
            found.append((name, optim.optimizer(optim.chain(built, optim.scale(-0.01)))))
    found.append(("sgd_scheduled", optim.sgd(_halving)))
    found.append(("sgd_momentum", optim.sgd(0.01, momentum=0.9, nesterov=True)))
    inject = getattr(optim, "inject_hyperparams", None)
    if inject is not None:
        found.append(("inject_adam", optim.optimizer(inject(optim.adam, learning_rate=0.01))))
    return found


def _halving(step: int) -> float:
    return 0.1 * 0.5**step


OPTIMIZERS = _all_optimizers()


def test_optimizer_registry_is_not_empty() -> None:
    names = [n for n, _ in OPTIMIZERS]
    assert "sgd" in names


def test_params_round_trip(tmp_path: Path) -> None:
    for dtype in (np.float32, np.float64):
        params = _params(dtype)
        path = tmp_path / f"p{np.dtype(dtype).name}.npz"
        checkpoint.save(path, params)
        restored = checkpoint.load(path)
        assert isinstance(restored, FrozenParams)
        assert_tree_identical(restored, params)
        assert not restored["0.w"].flags.writeable
        assert_tree_identical(checkpoint.load(path, template=params), params)


def test_batch_norm_like_state_round_trip(tmp_path: Path) -> None:
    state = {
        "1.running_mean": np.arange(4, dtype=np.float32),
        "1.running_var": np.ones(4, np.float32),
        "1.num_batches_tracked": np.array(7, np.int64),
    }
    tree = {"params": _params(), "state": state, "epoch": 3, "lr": 0.1, "done": False, "note": None}
    checkpoint.save(tmp_path / "s.npz", tree)
    assert_tree_identical(checkpoint.load(tmp_path / "s.npz"), tree)
    assert_tree_identical(checkpoint.load(tmp_path / "s.npz", template=tree), tree)


def test_scalars_and_special_floats_round_trip(tmp_path: Path) -> None:
    tree = (1.0 / 3.0, float("inf"), -0.0, 2**70, np.float32(1.5), np.int64(-3), [True, "x"], ())
    checkpoint.save(tmp_path / "t.npz", tree)
    assert_tree_identical(checkpoint.load(tmp_path / "t.npz"), tree)
    nan_tree = {"v": float("nan")}
    checkpoint.save(tmp_path / "n.npz", nan_tree)
    loaded = checkpoint.load(tmp_path / "n.npz")
    assert isinstance(loaded, dict)
    assert np.isnan(loaded["v"])


@pytest.mark.parametrize(("name", "opt"), OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_optimizer_state_round_trip_and_resume(
    name: str, opt: fdl.optim.Optimizer[Any], tmp_path: Path
) -> None:
    params = _params(np.float64)
    state = opt.init(params)
    for seed in range(3):
        state, _ = opt.update(state, _grads(params, seed))
    path = tmp_path / f"{name}.npz"
    checkpoint.save(path, state)
    restored = checkpoint.load(path, template=opt.init(params))
    assert_tree_identical(restored, state)
    # Continuing from the restored state is bit-identical to continuing from the original.
    cont_a, _ = opt.update(state, _grads(params, 9))
    cont_b, _ = opt.update(restored, _grads(params, 9))
    assert_tree_identical(cont_a, cont_b)


def test_namedtuple_needs_a_template(tmp_path: Path) -> None:
    opt = optim.sgd(0.1)
    checkpoint.save(tmp_path / "o.npz", opt.init(_params()))
    with pytest.raises(CheckpointError, match="template"):
        checkpoint.load(tmp_path / "o.npz")
    header = checkpoint.read_header(tmp_path / "o.npz")
    assert header["version"] == checkpoint.VERSION
    assert header["tree"]["type"] == "functional_dl.optim.base.OptimizerState"


class Other(NamedTuple):
    params: Any
    inner: Any
    step: int


def test_template_mismatches_are_named(tmp_path: Path) -> None:
    params = _params()
    path = tmp_path / "p.npz"
    checkpoint.save(path, {"params": params, "step": 1})
    bad_shape = {**params, "0.w": np.zeros((2, 2), np.float32)}
    cases: list[tuple[object, str]] = [
        ({"params": bad_shape, "step": 0}, r"\['0.w'\]: shape"),
        ({"params": fdl.params.cast(params, np.float64), "step": 0}, "dtype float32 in the file"),
        (
            {"params": {k: v for k, v in params.items() if k != "2.b"}, "step": 0},
            r"unexpected keys \['2.b'\]",
        ),
        ({"params": {**params, "9.w": params["0.w"]}, "step": 0}, r"missing keys \['9.w'\]"),
        ({"params": params, "step": 0.0}, "holds a int, the template expects a float"),
        ({"params": params}, "unexpected keys"),
    ]
    for template, message in cases:
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(path, template=template)
    opt_state = optim.sgd(0.1).init(params)
    checkpoint.save(path, opt_state)
    with pytest.raises(CheckpointError, match=r"template expects tests\.test_checkpoint\.Other"):
        checkpoint.load(path, template=Other(params, opt_state.inner, 0))


def test_unsavable_trees_are_refused(tmp_path: Path) -> None:
    for tree, message in [
        ({"x": np.array([object()])}, "dtype object"),
        ({1: np.zeros(2)}, "keys must be str"),
        ({"f": _halving}, "unsupported type function"),
        ({"s": np.array(["a"])}, "dtype <U1"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            checkpoint.save(tmp_path / "bad.npz", tree)
    assert list(tmp_path.iterdir()) == []


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_hostile_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    tree = {"w": np.arange(6, dtype=np.float64).reshape(2, 3)}
    checkpoint.save(good, tree)
    members = _members(good)
    variants: dict[str, tuple[dict[str, bytes], str]] = {
        "tampered": ({**members, "a0.npy": _npy(np.arange(6.0).reshape(2, 3) + 1)}, "checksum mismatch"),
        "object": ({**members, "a0.npy": _npy(np.array([None] * 6, dtype=object))}, "corrupt|malformed"),
        "reshaped": ({**members, "a0.npy": _npy(np.arange(6.0).reshape(3, 2))}, "header says"),
        "retyped": ({**members, "a0.npy": _npy(np.arange(6, dtype=np.int64).reshape(2, 3))}, "header says"),
        "extra": ({**members, "a1.npy": _npy(np.zeros(1))}, r"unexpected array members \['a1'\]"),
        "missing": ({k: v for k, v in members.items() if k != "a0.npy"}, "'a0' is missing"),
        "no_header": ({"a0.npy": members["a0.npy"]}, "no checkpoint header"),
        "bad_digest": ({**members, "__digest__.npy": _npy(np.zeros(32, np.uint8))}, "header checksum"),
    }
    for name, (contents, message) in variants.items():
        path = tmp_path / f"{name}.npz"
        _write_members(path, contents)
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(path)
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps(tree))
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "empty.npz").write_bytes(b"")
    for name in ("pickle.npz", "plain.npy", "empty.npz"):
        with pytest.raises(CheckpointError):
            checkpoint.load(tmp_path / name)
    data = good.read_bytes()
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            checkpoint.load(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "absent.npz")


_GOOD_TREE = {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "step": 5, "lr": 0.25}
_GOOD_BYTES: list[bytes] = []


def _good_bytes(tmp: Path) -> bytes:
    if not _GOOD_BYTES:
        checkpoint.save(tmp / "good.npz", _GOOD_TREE)
        _GOOD_BYTES.append((tmp / "good.npz").read_bytes())
    return _GOOD_BYTES[0]


@given(data=st.data())
def test_mutated_bytes_never_give_other_data(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    tmp = tmp_path_factory.mktemp("mut")
    raw = bytearray(_good_bytes(tmp))
    n_changes = data.draw(st.integers(1, 4))
    for _ in range(n_changes):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = (raw[i] + data.draw(st.integers(1, 255))) % 256
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp / "mutated.npz"
    path.write_bytes(bytes(raw))
    try:
        loaded = checkpoint.load(path)
    except CheckpointError:
        return
    assert_tree_identical(loaded, _GOOD_TREE)  # a harmless change (a timestamp): same data


def _failing(real: Callable[..., Any]) -> Callable[..., Any]:
    def savez(file: Any, *args: Any, **kwargs: Any) -> None:
        real(file, *args, **kwargs)
        file.truncate(file.tell() // 2)  # half of the new content is on disk, then the crash
        raise OSError("simulated crash mid-save")

    return savez


@pytest.mark.parametrize("where", ["savez", "fsync"])
def test_failed_save_leaves_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "ckpt.npz"
    old = {"w": np.zeros(3)}
    checkpoint.save(path, old)
    before = path.read_bytes()
    if where == "savez":
        monkeypatch.setattr(np, "savez", _failing(np.savez))
    else:

        def fsync(fd: int) -> None:
            raise OSError("simulated crash at fsync")

        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(path, {"w": np.ones(1000)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]
    assert_tree_identical(checkpoint.load(path), old)


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"w": np.zeros(3)})
    checkpoint.save(path, {"w": np.ones(2)})
    assert_tree_identical(checkpoint.load(path), {"w": np.ones(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_saved_file_has_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"w": np.zeros(1)})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o600)
    checkpoint.save(path, {"w": np.ones(1)})
    assert path.stat().st_mode & 0o777 == 0o600
