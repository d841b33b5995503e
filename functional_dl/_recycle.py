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
build), or do not read at import what this module expects of them (a self-check makes a slab,
reads its count alone and with a view on it), :func:`empty` is ``numpy.empty``.

How much is kept: of each size, as many slabs as were ever in use at once (a slab is made only when
every kept one of its size is in use), so a training step finds every slab its busiest moment needs.
Keeping only as many free ones as are in use at the moment of a request drops, in the quiet part of
a step, slabs that its busy part then makes again from fresh pages: in the LeNet step of the
benchmarks, about 500 page faults per step. Arrays smaller than :data:`RECYCLE_FROM` bytes come from
``numpy.empty``: glibc's ``malloc`` keeps blocks under 128 KiB (its default threshold for mapping a
block straight from the system) in its own heap. All sizes together, at most :data:`MAX_SLABS` slabs
of at most :data:`MAX_BYTES` bytes in all are kept: when a new one would pass either, the free slabs
of every size are dropped first, and if that is not enough the new array is a plain ``numpy.empty``
that is not kept. So memory held for recycling never grows without bound, whatever sizes a program
asks for.

Threads share the kept slabs under one lock (a thread that takes a slab holds a reference to it
before it lets go of the lock, so no other thread can see it free); a process forked from this
one gets a lock of its own and its own copies of the slabs.

Who may write into a recycled array: only the library code that asked :func:`empty` for it, and
only before handing it out (every caller fills all of it first: a slab holds whatever an earlier
array left there); after that it is an ordinary array of whoever holds it.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from functional_dl.types import Array

__all__ = ["MAX_BYTES", "MAX_SLABS", "RECYCLE_FROM", "RECYCLING", "empty", "release"]

_S = TypeVar("_S", bound=np.generic)

#: Arrays of at least this many bytes are taken from the kept slabs (128 KiB: from 1 MiB up, the
#: MNIST-1D CNN step of the benchmarks made some 400 page faults per step in arrays below that).
RECYCLE_FROM = 1 << 17
#: At most this many slabs are kept, in use or free, of all sizes together ...
MAX_SLABS = 256
#: ... holding at most this many bytes: past either, a new array is a plain ``numpy.empty``.
MAX_BYTES = 1 << 30

# Module state: slabs by size in bytes. A cache of memory only: what an array holds never
# depends on whether its slab was kept.
_SLABS: dict[int, list[npt.NDArray[np.uint8]]] = {}
_LOCK = [threading.Lock()]  # in a list, so that a forked child can replace it


def _new_lock_after_fork() -> None:
    # A child forked while another thread held the lock inherits it held, by a thread it does not
    # have: without a new one its first large array would wait forever. Its slabs are its own
    # copies, with the counts of its own references, so they stay as they are.
    _LOCK[0] = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)
# sys.getrefcount(slabs[i]) of a slab nobody else holds: the list's reference and the argument's.
_FREE = 2


def _exact_refcounts() -> bool:
    # The free-threaded build (which has sys._is_gil_enabled) defers some reference counting.
    gil: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return platform.python_implementation() == "CPython" and (gil is None or gil())


def _refcount(slabs: list[npt.NDArray[np.uint8]], i: int) -> int:
    # The one place reference counts are read, so that the self-check reads them the same way.
    return sys.getrefcount(slabs[i])


def _counts_read_as_expected() -> bool:
    """Whether a slab reads :data:`_FREE` with no array on it, and one more with one view on it.

    An interpreter that counted differently (fewer: a slab in use would look free and be handed
    out again; more: none would ever look free and the lists would only grow) turns recycling off.
    """
    slabs = [np.empty(8, np.uint8)]
    alone = _refcount(slabs, 0)
    view = slabs[0].view(np.float32).reshape(2)
    held = _refcount(slabs, 0)
    del view
    return alone == _FREE and held == _FREE + 1 and _refcount(slabs, 0) == _FREE


#: Whether :func:`empty` recycles at all (else it is ``numpy.empty``): checked once, at import.
RECYCLING = _exact_refcounts() and _counts_read_as_expected()


def _free(slabs: list[npt.NDArray[np.uint8]]) -> list[int]:
    return [i for i in range(len(slabs)) if _refcount(slabs, i) == _FREE]


def _drop_free() -> int:
    """Drop every free slab, and every size left without slabs; returns how many were dropped."""
    dropped = 0
    for nbytes in list(_SLABS):
        slabs = _SLABS[nbytes]
        free = _free(slabs)
        for i in reversed(free):
            del slabs[i]
        dropped += len(free)
        if not slabs:
            del _SLABS[nbytes]
    return dropped


def _room_for(nbytes: int) -> bool:
    count = sum(len(slabs) for slabs in _SLABS.values())
    kept = sum(size * len(slabs) for size, slabs in _SLABS.items())
    return count < MAX_SLABS and kept + nbytes <= MAX_BYTES


@overload
def empty(shape: tuple[int, ...], dtype: type[_S]) -> npt.NDArray[_S]: ...
@overload
def empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array: ...
def empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A new uninitialised array, like ``numpy.empty(shape, dtype)``, in recycled memory if it is large.

    The caller must write every entry before reading it, as with ``numpy.empty``: a recycled slab
    holds whatever an earlier array left in it.
    """
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    # Only plain numeric dtypes: a slab's bytes seen as object pointers would crash the interpreter.
    if nbytes < RECYCLE_FROM or not RECYCLING or dt.isbuiltin != 1 or dt.hasobject:
        return np.empty(shape, dt)
    with _LOCK[0]:
        slabs = _SLABS.get(nbytes, [])
        free = _free(slabs)
        if free:
            # The other free ones stay: the busiest moment of a step, which made them, comes again
            # next step (dropped, they would come back as fresh pages, a page fault each).
            slab = slabs[free[0]]
        else:
            if not _room_for(nbytes):
                _drop_free()  # the free slabs of other sizes make room first
                if not _room_for(nbytes):
                    return np.empty(shape, dt)  # full of slabs in use: this one is not kept
            slab = np.empty(nbytes, np.uint8)
            _SLABS.setdefault(nbytes, []).append(slab)
    return slab.view(dt).reshape(shape)


def release() -> int:
    """Drop every kept slab that no array uses (their memory goes back to ``malloc``); returns how many."""
    with _LOCK[0]:
        return _drop_free()
