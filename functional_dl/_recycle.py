"""Recycled memory: new large arrays in memory that earlier arrays have finished with, not fresh pages.

An optimizer step of a large network makes new arrays for every parameter and moment (nothing is
updated in place), and frees the previous step's ones. Freed memory of that size usually goes back
to the operating system, so the next step's arrays are fresh pages, which the kernel maps and
zeroes one by one the first time they are written: for a 10M-parameter Adam step, 120 MB and some
thirty thousand page faults, which on a virtual machine cost more than the arithmetic.
:func:`empty` hands out such arrays from *slabs* of memory kept for the purpose, each reused as
soon as no array uses it any more. (A layer's non-trained state, such as batch norm's running
statistics, is what the library calls its *buffers*; this module has nothing to do with them.)

When is a slab free? Each slab is one ``uint8`` array that owns its memory, and every array
handed out is a view of it; NumPy points every view of a view at the array that owns the memory,
so a slab is in use exactly while something other than this module holds a reference to it,
which CPython's reference count tells. Reusing it then is what ``malloc`` does with freed memory
anyway, minus the round trip through the operating system; an array that is still referenced is
never handed out again. Where reference counts are not exact (not CPython, or the free-threaded
build), :func:`empty` is ``numpy.empty``.

How much is kept: slabs of one size are kept while they are in use, and at most as many free
ones as are in use (the previous step's arrays, ready for the next step); arrays smaller than
:data:`RECYCLE_FROM` bytes come from ``numpy.empty`` (``malloc`` keeps small blocks itself).
"""

from __future__ import annotations

import math
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from functional_dl.types import Array

__all__ = ["RECYCLE_FROM", "empty", "release"]

_S = TypeVar("_S", bound=np.generic)

#: Arrays of at least this many bytes are taken from the kept slabs.
RECYCLE_FROM = 1 << 20

# Module state: slabs by size in bytes. A cache of memory only: what an array holds never
# depends on whether its slab was kept.
_SLABS: dict[int, list[npt.NDArray[np.uint8]]] = {}
_LOCK = threading.Lock()


def _exact_refcounts() -> bool:
    # The free-threaded build (which has sys._is_gil_enabled) defers some reference counting.
    gil: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return platform.python_implementation() == "CPython" and (gil is None or gil())


_EXACT_REFCOUNTS = _exact_refcounts()
# sys.getrefcount(slabs[i]) of a slab nobody else holds: the list's reference and the argument's.
_FREE = 2


@overload
def empty(shape: tuple[int, ...], dtype: type[_S]) -> npt.NDArray[_S]: ...
@overload
def empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array: ...
def empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A new uninitialised array, like ``numpy.empty(shape, dtype)``, in recycled memory if it is large."""
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes < RECYCLE_FROM or not _EXACT_REFCOUNTS:
        return np.empty(shape, dt)
    with _LOCK:
        slabs = _SLABS.setdefault(nbytes, [])
        free = [i for i in range(len(slabs)) if sys.getrefcount(slabs[i]) == _FREE]
        if free:
            slab = slabs[free[0]]
            in_use = len(slabs) - len(free) + 1  # this one included
            for i in reversed(free[1:][in_use:]):  # keep no more free slabs than are in use
                del slabs[i]
        else:
            slab = np.empty(nbytes, np.uint8)
            slabs.append(slab)
    return slab.view(dt).reshape(shape)


def release() -> int:
    """Drop every kept slab that no array uses (their memory goes back to ``malloc``); returns how many."""
    dropped = 0
    with _LOCK:
        for slabs in _SLABS.values():
            free = [i for i in range(len(slabs)) if sys.getrefcount(slabs[i]) == _FREE]
            for i in reversed(free):
                del slabs[i]
            dropped += len(free)
    return dropped
