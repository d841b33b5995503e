"""Encoding a tree of plain data to a JSON description plus arrays, and restoring it, validated.

The private half of :mod:`functional_dl.checkpoint`. Every node of the JSON tree is an object with
a kind ``"t"``::

    {"t": "none"} | {"t": "bool", "v": b} | {"t": "int", "v": n} | {"t": "float", "v": "0x1.8p+1"}
    {"t": "str", "v": s}
    {"t": "array" | "npscalar", "ref": "a0", "shape": [2, 3], "dtype": "<f4", "sha256": "..."}
    {"t": "tuple" | "list", "items": [...]}
    {"t": "namedtuple", "type": "module.QualName", "fields": [...], "items": [...]}
    {"t": "mapping", "frozen": true, "keys": [...], "items": [...]}

Mapping keys are kept as a list (not a JSON object) so that duplicated keys cannot collapse
silently. The restorer trusts nothing in the description: every field is type-checked, and with a
template the structure must match the template node for node.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from functional_dl._arraylike import foreign_array
from functional_dl.errors import CheckpointError
from functional_dl.params import FrozenParams

__all__ = ["FORMAT", "NO_TEMPLATE", "VERSION", "Restorer", "encode"]

FORMAT = "functional_dl.checkpoint"
VERSION = 1
#: The "no template" marker (``None`` is a legitimate template leaf).
NO_TEMPLATE: Any = object()

# Numeric kinds only: bool, signed and unsigned integers, floats, complex. Object, string, void
# (structured) and datetime arrays are refused in both directions.
_ARRAY_KINDS = frozenset("biufc")

ReadFn = Callable[[str, int, str], np.ndarray[Any, Any]]


def _is_namedtuple(node: object) -> bool:
    return isinstance(node, tuple) and isinstance(getattr(type(node), "_fields", None), tuple)


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _contiguous(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


#: How deep a tree may nest. Params, optimizer states and training states are a few levels deep;
#: the limit keeps both save and load well inside Python's recursion limit, so whatever saves loads.
MAX_DEPTH = 64


def _digest(arr: np.ndarray[Any, Any]) -> str:
    # hashlib reads the array's own buffer: no tobytes() copy, so a load holds each array once.
    return hashlib.sha256(_contiguous(arr).data).hexdigest()


def _encode_array(arr: np.ndarray[Any, Any], kind: str, path: str, arrays: dict[str, Any]) -> dict[str, Any]:
    foreign = foreign_array(arr)  # saved as its data alone, it would load as something else
    if foreign is not None:
        raise CheckpointError(f"cannot save {path}: it is {foreign}")
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise CheckpointError(f"cannot save {path}: arrays of dtype {arr.dtype} are not plain numeric data")
    ref = f"a{len(arrays)}"
    arrays[ref] = _contiguous(arr)
    return {"t": kind, "ref": ref, "shape": list(arr.shape), "dtype": arr.dtype.str, "sha256": _digest(arr)}


def encode(node: object, path: str, arrays: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Describe ``node`` as JSON, moving its arrays into ``arrays`` under fresh member names.

    Raises:
        CheckpointError: for what cannot be saved, or a tree nested deeper than :data:`MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise CheckpointError(f"cannot save {path[:80]}...: the tree nests deeper than {MAX_DEPTH} levels")
    return _encode_node(node, path, arrays, depth + 1)


def _encode_node(node: object, path: str, arrays: dict[str, Any], depth: int) -> dict[str, Any]:  # noqa: PLR0911
    if node is None:
        return {"t": "none"}
    if isinstance(node, bool):
        return {"t": "bool", "v": node}
    if isinstance(node, int):
        return {"t": "int", "v": int(node)}
    if isinstance(node, float):
        return {"t": "float", "v": float(node).hex()}
    if isinstance(node, str):
        return {"t": "str", "v": node}
    if isinstance(node, np.ndarray):
        return _encode_array(node, "array", path, arrays)
    if isinstance(node, np.generic):
        return _encode_array(np.asarray(node), "npscalar", path, arrays)
    if _is_namedtuple(node):
        assert isinstance(node, tuple)
        fields: tuple[str, ...] = type(node)._fields  # type: ignore[attr-defined]
        items = [encode(v, f"{path}.{f}", arrays, depth) for f, v in zip(fields, node, strict=True)]
        return {"t": "namedtuple", "type": _type_name(type(node)), "fields": list(fields), "items": items}
    if isinstance(node, tuple | list):
        kind = "tuple" if isinstance(node, tuple) else "list"
        return {"t": kind, "items": [encode(v, f"{path}[{i}]", arrays, depth) for i, v in enumerate(node)]}
    if isinstance(node, Mapping):
        keys = list(node.keys())
        for k in keys:
            if not isinstance(k, str):
                raise CheckpointError(f"cannot save {path}: mapping keys must be str, got {k!r}")
        items = [encode(node[k], f"{path}[{k!r}]", arrays, depth) for k in keys]
        return {"t": "mapping", "frozen": isinstance(node, FrozenParams), "keys": keys, "items": items}
    raise CheckpointError(f"cannot save {path}: unsupported type {type(node).__name__} (only plain data)")


def _field(node: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
    value = node.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CheckpointError(f"{path}: malformed header entry {name!r}")
    return value


# Checked in order: bool before int (bool is an int subclass), NamedTuple before tuple.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "none"),
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (np.ndarray, "array"),
    (np.generic, "npscalar"),
    (list, "list"),
    (Mapping, "mapping"),
)


def _kind_of_template(template: object) -> str:
    if _is_namedtuple(template):
        return "namedtuple"
    if isinstance(template, tuple):
        return "tuple"
    for cls, kind in _KINDS:
        if isinstance(template, cls):
            return kind
    raise CheckpointError(f"template has an unsupported type {type(template).__name__}")


class Restorer:
    """Rebuilds a tree from its description, reading arrays through ``read`` and checking each."""

    def __init__(self, read: ReadFn, where: str, namedtuples_as_tuples: bool = False) -> None:
        self.read = read
        self.where = where
        self.namedtuples_as_tuples = namedtuples_as_tuples
        self.used: set[str] = set()
        self.depth = 0  # how many nodes enclose the one being restored

    def fail(self, path: str, detail: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {path}: {detail}")

    def restore(self, node: object, path: str, template: object) -> object:
        if not isinstance(node, dict):
            raise self.fail(path, "malformed header node")
        if self.depth > MAX_DEPTH:
            raise self.fail(path[:80] + "...", f"the tree nests deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return self._restore(node, path, template)
        finally:
            self.depth -= 1

    def _restore(self, node: dict[str, Any], path: str, template: object) -> object:
        kind = node.get("t")
        if template is not NO_TEMPLATE:
            expected = _kind_of_template(template)
            if kind != expected:
                raise self.fail(path, f"the file holds a {kind}, the template expects a {expected}")
        if kind in ("array", "npscalar"):
            return self._array(node, path, template, kind == "npscalar")
        if kind in ("tuple", "list", "namedtuple"):
            return self._sequence(node, path, template, kind)
        if kind == "mapping":
            return self._mapping(node, path, template)
        return self._scalar(node, path, kind)

    def _scalar(self, node: Mapping[str, Any], path: str, kind: object) -> object:
        if kind == "none":
            return None
        if kind == "bool":
            return bool(_field(node, "v", bool, path))
        if kind == "int":
            return int(_field(node, "v", int, path))
        if kind == "float":
            return float.fromhex(_field(node, "v", str, path))
        if kind == "str":
            return str(_field(node, "v", str, path))
        raise self.fail(path, f"unknown node kind {kind!r}")

    def _array(self, node: Mapping[str, Any], path: str, template: object, scalar: bool) -> object:
        ref = _field(node, "ref", str, path)
        shape_list = _field(node, "shape", list, path)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape_list):
            raise self.fail(path, "malformed shape in header")
        shape = tuple(shape_list)
        dtype = np.dtype(_field(node, "dtype", str, path))
        if dtype.kind not in _ARRAY_KINDS:
            raise self.fail(path, f"refusing an array of dtype {dtype} (only plain numeric data loads)")
        if scalar and shape:
            raise self.fail(path, "a scalar with a non-empty shape")
        if template is not NO_TEMPLATE:
            t = np.asarray(template)
            if t.shape != shape:
                raise self.fail(path, f"shape {shape} in the file, the template expects {t.shape}")
            if t.dtype != dtype:
                raise self.fail(path, f"dtype {dtype} in the file, the template expects {t.dtype}")
        if ref in self.used:
            raise self.fail(path, f"array member {ref!r} is referenced twice")
        self.used.add(ref)
        nbytes = math.prod(shape) * dtype.itemsize
        arr = self.read(ref, nbytes, path)
        if arr.shape != shape or arr.dtype.str != dtype.str:
            stored = f"{arr.dtype.str}{list(arr.shape)}"
            raise self.fail(path, f"stored array is {stored}, header says {dtype.str}{list(shape)}")
        if _digest(arr) != _field(node, "sha256", str, path):
            raise self.fail(path, "checksum mismatch (the array was modified or the file is corrupt)")
        if scalar:
            return arr[()]
        arr.flags.writeable = False
        return arr

    def _sequence(self, node: Mapping[str, Any], path: str, template: object, kind: str) -> object:
        items = _field(node, "items", list, path)
        if kind != "namedtuple":
            subs = self._children(items, [f"{path}[{i}]" for i in range(len(items))], template, path)
            return tuple(subs) if kind == "tuple" else list(subs)
        fields = _field(node, "fields", list, path)
        type_name = _field(node, "type", str, path)
        if len(fields) != len(items) or not all(isinstance(f, str) for f in fields):
            raise self.fail(path, "malformed NamedTuple in header")
        if template is NO_TEMPLATE and not self.namedtuples_as_tuples:
            raise self.fail(
                path,
                f"holds a NamedTuple ({type_name}); pass template= (for example opt.init(params)) so it "
                "is rebuilt as that type (types are never imported by name from a file)",
            )
        if template is NO_TEMPLATE:
            return tuple(self._children(items, [f"{path}.{f}" for f in fields], template, path))
        cls = type(template)
        # The type is checked before the children: a wrong template is then named as such, not
        # reported as a mismatch somewhere inside it.
        if type_name != _type_name(cls) or tuple(fields) != cls._fields:  # type: ignore[attr-defined]
            raise self.fail(path, f"the file holds a {type_name}, the template expects {_type_name(cls)}")
        return cls._make(self._children(items, [f"{path}.{f}" for f in fields], template, path))  # type: ignore[attr-defined]

    def _children(self, items: list[Any], paths: list[str], template: object, path: str) -> list[object]:
        if template is NO_TEMPLATE:
            return [self.restore(n, p, NO_TEMPLATE) for n, p in zip(items, paths, strict=True)]
        assert isinstance(template, tuple | list)
        if len(items) != len(template):
            raise self.fail(path, f"{len(items)} entries in the file, the template has {len(template)}")
        return [self.restore(n, p, t) for n, p, t in zip(items, paths, template, strict=True)]

    def _mapping(self, node: Mapping[str, Any], path: str, template: object) -> object:
        keys = _field(node, "keys", list, path)
        items = _field(node, "items", list, path)
        well_formed = all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys)
        if len(keys) != len(items) or not well_formed:
            raise self.fail(path, "malformed mapping in header")
        if template is NO_TEMPLATE:
            frozen = _field(node, "frozen", bool, path)
            out = {
                k: self.restore(n, f"{path}[{k!r}]", NO_TEMPLATE) for k, n in zip(keys, items, strict=True)
            }
        else:
            assert isinstance(template, Mapping)
            missing, extra = set(template) - set(keys), set(keys) - set(template)
            if missing or extra:
                parts = [f"missing keys {sorted(missing)}"] if missing else []
                parts += [f"unexpected keys {sorted(extra)}"] if extra else []
                raise self.fail(path, "; ".join(parts))
            frozen = isinstance(template, FrozenParams)
            out = {
                k: self.restore(n, f"{path}[{k!r}]", template[k]) for k, n in zip(keys, items, strict=True)
            }
        return FrozenParams(out) if frozen else out
