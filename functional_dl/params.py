"""Parameter mappings: immutable, picklable, flat, with dotted keys like a PyTorch ``state_dict``.

Parameters (and non-trained state, and gradients) are ``Mapping[str, Array]``. What the library
builds is a :class:`FrozenParams`: a ``dict`` that refuses mutation and whose arrays are read-only,
so an accidental ``params["w"] += 1`` or ``w *= 2`` raises at once. It pickles (a plain
``types.MappingProxyType`` would not) and reads at dict speed.

Every helper here is pure: it returns new mappings and never modifies its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from functional_dl._arraylike import foreign_array
from functional_dl._fn import keymap, merge, valmap
from functional_dl.errors import DTypeError, FrozenError, ParamsError, ShapeError
from functional_dl.types import Array, Params

__all__ = [
    "FrozenParams",
    "allclose",
    "cast",
    "check_structure",
    "freeze",
    "global_norm",
    "merge_params",
    "num_params",
    "prefix",
    "strip_prefix",
    "tree_add",
    "tree_map",
    "tree_scale",
    "tree_sub",
    "zeros_like",
]


class FrozenParams(dict[str, Array]):
    """A read-only ``dict`` of read-only arrays. Build it with :func:`freeze`.

    Mutating methods raise :class:`~functional_dl.errors.FrozenError` (a ``TypeError``). Equality
    is dict equality (so compare arrays with :func:`allclose`, not ``==``).
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise FrozenError("FrozenParams", "is immutable: build a new mapping (see functional_dl.params)")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[Callable[[dict[str, Array]], FrozenParams], tuple[dict[str, Array]]]:
        return (_unpickle, (dict(self),))

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {v.dtype}{list(v.shape)}" for k, v in self.items())
        return f"FrozenParams({{{items}}})"


def _unpickle(d: dict[str, Array]) -> FrozenParams:
    # Arrays come out of pickle freshly allocated and owned by nobody else: freezing in place is safe.
    return adopt(d)


def _readonly(a: Array) -> Array:
    if not a.flags.writeable:
        return a
    out = a.copy()
    out.flags.writeable = False
    return out


def freeze(params: Mapping[str, npt.ArrayLike]) -> FrozenParams:
    """An immutable copy of ``params``: writable arrays are copied and made read-only.

    Arrays that are already read-only are shared, not copied, so freezing frozen params is cheap.
    Array-likes are converted with ``np.asarray``, except a masked array or an ``np.matrix``
    (``np.asarray`` would drop the mask, or keep the matrix's two axes): a :class:`ParamsError`.

    Example:
        >>> import numpy as np
        >>> p = freeze({"w": np.ones(2)})
        >>> p["w"].flags.writeable
        False
    """
    out: dict[str, Array] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise ParamsError("params", f"keys must be str, got {name!r}")
        foreign = foreign_array(value)  # np.asarray would drop a mask or keep a matrix's shape
        if foreign is not None:
            raise ParamsError("params", f"{name!r} must be a plain array, got {foreign}")
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            raise ParamsError("params", f"{name!r} must be a floating array, got dtype {arr.dtype}")
        out[name] = _readonly(arr)
    return FrozenParams(out)


def adopt(fresh: dict[str, Array]) -> FrozenParams:
    """Freeze arrays that the caller has just allocated and nobody else holds, without copying.

    Internal fast path for optimizers and initialisers: it marks the arrays read-only in place.
    """
    for arr in fresh.values():
        arr.flags.writeable = False
    return FrozenParams(fresh)


def prefix(params: Params, name: str) -> dict[str, Array]:
    """Prefix every key with ``name + "."``: the params of a child as seen by its parent.

    Example:
        >>> prefix({"w": 1.0, "b": 2.0}, "0")  # doctest: +SKIP
        {'0.w': 1.0, '0.b': 2.0}
    """
    lead = name + "."
    return keymap(lead.__add__, params)


def strip_prefix(params: Params, name: str) -> dict[str, Array]:
    """The entries under ``name + "."`` with that prefix removed: a child's view of its parent's.

    Raises:
        ParamsError: ``params`` is not a mapping (the error's path is ``name``).
    """
    lead = name + "."
    n = len(lead)
    try:
        items = params.items()
    except AttributeError:  # a list or None where the params belong
        raise ParamsError(name, f"expected a mapping of arrays, got {type(params).__name__}") from None
    return {k[n:]: v for k, v in items if isinstance(k, str) and k.startswith(lead)}


def merge_params(*parts: Params) -> dict[str, Array]:
    """Merge mappings whose keys are disjoint; a repeated key is a :class:`ParamsError`."""
    merged = merge(*parts)
    if len(merged) != sum(len(p) for p in parts):
        seen: set[str] = set()
        dup: set[str] = set()
        for part in parts:
            for k in part:
                (dup if k in seen else seen).add(k)
        raise ParamsError("params", f"duplicate keys when merging: {sorted(dup)}")
    return merged


def _check_arrays(params: object, where: str) -> Params:
    """``params`` when it is a mapping of NumPy arrays with str keys, else a ``ParamsError``.

    The helpers below take what the library hands out (params, buffers, gradients): a list would
    be concatenated by ``+``, and a masked array or an ``np.matrix`` gives ``+``, ``*`` and ``@``
    other meanings, so each is refused rather than converted. One ``type`` test per key.
    """
    if not isinstance(params, Mapping):
        raise ParamsError(where, f"expected a mapping of arrays, got {type(params).__name__}")
    for name, value in params.items():
        if type(value) is np.ndarray:
            continue
        if not isinstance(name, str):
            raise ParamsError(where, f"keys must be str, got {name!r}")
        if not isinstance(value, np.ndarray):
            raise ParamsError(where, f"{name!r} must be a NumPy array, got {type(value).__name__}")
        foreign = foreign_array(value)
        if foreign is not None:
            raise ParamsError(where, f"{name!r} must be a plain array, got {foreign}")
    return params


def tree_map(f: Callable[[Array], Array], params: Params) -> dict[str, Array]:
    """Apply ``f`` to every array."""
    if not callable(f):
        raise ParamsError("tree_map", f"f must be a function of an array, got {type(f).__name__}")
    return valmap(f, _check_arrays(params, "tree_map"))


def _same_structure(a: Params, b: Params, what: str) -> None:
    """Same keys and, key by key, the same shape: ``+`` would otherwise broadcast ``(3,)`` with ``(1,)``."""
    _check_arrays(a, what)
    _check_arrays(b, what)
    if a.keys() != b.keys():
        raise ParamsError(what, _key_diff(a.keys(), b.keys()))
    for k in a:
        if a[k].shape != b[k].shape:
            raise ShapeError(what, f"{k!r} has shape {a[k].shape} in the first, {b[k].shape} in the second")


def tree_add(a: Params, b: Params) -> dict[str, Array]:
    """Elementwise ``a + b`` over two mappings with the same keys and shapes."""
    _same_structure(a, b, "tree_add")
    return {k: a[k] + b[k] for k in a}


def tree_sub(a: Params, b: Params) -> dict[str, Array]:
    """Elementwise ``a - b`` over two mappings with the same keys and shapes."""
    _same_structure(a, b, "tree_sub")
    return {k: a[k] - b[k] for k in a}


def tree_scale(params: Params, factor: float) -> dict[str, Array]:
    """Every array times the scalar ``factor`` (dtypes are kept: the scalar is weakly typed)."""
    _check_arrays(params, "tree_scale")
    if isinstance(factor, bool) or not isinstance(factor, int | float | np.integer | np.floating):
        raise ParamsError("tree_scale", f"factor must be a real number, got {factor!r}")
    return {k: v * factor for k, v in params.items()}


def zeros_like(params: Params) -> dict[str, Array]:
    """Zeros with the keys, shapes and dtypes of ``params``."""
    return valmap(np.zeros_like, _check_arrays(params, "zeros_like"))


def cast(params: Params, dtype: npt.DTypeLike) -> FrozenParams:
    """A frozen copy with every array converted to ``dtype`` (``cast(p, np.float64)`` for checks)."""
    _check_arrays(params, "cast")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError("cast", f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise DTypeError("cast", f"dtype must be a floating dtype (params are floats), got {dt}")
    return adopt({k: np.array(v, dtype=dt) for k, v in params.items()})


def global_norm(params: Params) -> float:
    """The L2 norm of all arrays taken together: ``sqrt(sum_k ||p_k||^2)``."""
    _check_arrays(params, "global_norm")
    total = 0.0
    for v in params.values():
        flat = v.ravel()
        total += float(flat @ flat)
    return float(np.sqrt(total))


def num_params(params: Params) -> int:
    """The total number of scalars in ``params``."""
    _check_arrays(params, "num_params")
    return sum(int(v.size) for v in params.values())


def allclose(a: Params, b: Params, rtol: float = 1e-7, atol: float = 0.0) -> bool:
    """``True`` when both mappings have the same keys and shapes and all arrays are close."""
    if a.keys() != b.keys():
        return False
    return all(a[k].shape == b[k].shape and np.allclose(a[k], b[k], rtol=rtol, atol=atol) for k in a)


def _key_diff(actual: Iterable[str], expected: Iterable[str]) -> str:
    got, want = set(actual), set(expected)
    parts = []
    if want - got:
        parts.append(f"missing keys {sorted(want - got)}")
    if got - want:
        parts.append(f"unexpected keys {sorted(got - want)}")
    return "; ".join(parts)


def check_structure(actual: Params, expected: Params, what: str = "params", check_dtype: bool = True) -> None:
    """Raise one :class:`ParamsError` listing every difference between two mappings' structures.

    Compares keys, shapes and (unless ``check_dtype`` is false) dtypes; values are not compared.

    Args:
        actual: the mapping to check (for example gradients or a loaded checkpoint).
        expected: the template (for example the current params).
        what: a name for ``actual`` used as the error's path (``"grads"``).
        check_dtype: also compare dtypes.

    Raises:
        ParamsError: listing missing keys, unexpected keys, and each shape or dtype mismatch.
    """
    problems = []
    diff = _key_diff(actual.keys(), expected.keys())
    if diff:
        problems.append(diff)
    for k in sorted(actual.keys() & expected.keys()):
        a, e = actual[k], expected[k]
        a_shape, e_shape = np.shape(a), np.shape(e)
        if a_shape != e_shape:
            problems.append(f"{k!r} has shape {a_shape}, expected {e_shape}")
        a_dt, e_dt = np.asarray(a).dtype, np.asarray(e).dtype
        if check_dtype and a_dt != e_dt:
            problems.append(f"{k!r} has dtype {a_dt}, expected {e_dt}")
    if problems:
        raise ParamsError(what, "structure does not match: " + "; ".join(problems))
