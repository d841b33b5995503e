"""The library's own threads: one setting for how many, and the pool they run on.

NumPy runs each ufunc on one core, but it releases the GIL while it works on a large array, so
disjoint pieces of elementwise work (one parameter's optimizer update, say) run in parallel on a
few Python threads. The library starts such threads in two places (a fused optimizer over large
arrays, :func:`functional_dl.optim.fuse`, shares out blocks of its vectors; a stride-1 depthwise
convolution, :mod:`functional_dl.layers._depthwise_planes`, shares out blocks of its planes) and
always through :func:`parallel_map`.

How many threads
----------------
:func:`num_threads` is the number in force, the smallest of

1. the setting: :func:`set_num_threads`, else the environment variable
   ``FUNCTIONAL_DL_NUM_THREADS``, else ``min(2, cores available)`` (conservative: the machine is
   often shared, and BLAS already runs its own threads for the matrix products);
2. the cores this process may run on (``os.sched_getaffinity`` where it exists, else
   ``os.cpu_count()``);
3. when ``threadpoolctl`` is installed, the thread limit of every BLAS and OpenMP pool it sees, read
   live, so ``with threadpoolctl.threadpool_limits(1):`` keeps the library on one thread too.

Results do not depend on the count: the work given to threads is elementwise and split into
pieces fixed by the sizes alone (never by the count), never a reduction split across threads, so
one thread and two give the same bits (a test checks it).

Example:
    >>> from functional_dl import threads
    >>> threads.set_num_threads(1)
    >>> threads.num_threads()
    1
    >>> threads.set_num_threads(None)   # back to the environment or the default
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from functional_dl.errors import DomainError

__all__ = ["ENV_VAR", "num_threads", "parallel_map", "set_num_threads"]

T = TypeVar("T")
R = TypeVar("R")

#: The environment variable read when :func:`set_num_threads` has not been called.
ENV_VAR = "FUNCTIONAL_DL_NUM_THREADS"

# Module state, and the only global setting in the library: the thread count is a property of the
# machine and of the user's wishes, not of any computation (results do not depend on it).
_SETTING: list[int | None] = [None]
_POOL: list[tuple[ThreadPoolExecutor, int]] = []  # [(pool, its number of workers)] once started
_CONTROLLER: list[object] = []  # [] until first looked for; then [controller] or [None]


def set_num_threads(n: int | None) -> None:
    """Set how many threads the library may use (``None``: back to the environment or the default).

    Raises:
        DomainError: (a ``ValueError``) when ``n`` is not a positive int or ``None``.
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise DomainError("set_num_threads", f"expected a positive int or None, got {n!r}")
    _SETTING[0] = n


def _from_env() -> int | None:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise DomainError(ENV_VAR, f"expected a positive int, got {raw!r}") from None
    if n < 1:
        raise DomainError(ENV_VAR, f"expected a positive int, got {raw!r}")
    return n


def _cores() -> int:
    affinity: Callable[[int], set[int]] | None = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


def _pool_limits() -> int | None:
    """The smallest thread limit of the BLAS/OpenMP pools threadpoolctl sees (``None`` without it)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            # Building the controller scans the loaded libraries (milliseconds): once. Reading a
            # limit from it afterwards asks the library itself (microseconds), so it stays live.
            _CONTROLLER.append(ThreadpoolController())
    controller = _CONTROLLER[0]
    if controller is None:
        return None
    counts: list[int] = [int(lib.num_threads) for lib in getattr(controller, "lib_controllers", [])]
    return min(counts) if counts else None


def num_threads() -> int:
    """How many threads the library may use now (see the module docstring for the rule)."""
    setting = _SETTING[0]
    if setting is None:
        setting = _from_env()
    n = min(setting if setting is not None else 2, _cores())
    limit = _pool_limits()
    return max(1, min(n, limit) if limit is not None else n)


def _executor(workers: int) -> ThreadPoolExecutor:
    if _POOL and _POOL[0][1] >= workers:
        return _POOL[0][0]
    if _POOL:  # grown only when more workers are asked for than it has
        _POOL.pop()[0].shutdown(wait=False)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="functional_dl")
    _POOL.append((pool, workers))
    return pool


def _forget_pool() -> None:
    # A forked child inherits the pool object but none of its threads.
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[fn(item) for item in items]``, with up to ``threads`` of them running at once.

    The calling thread runs the first item itself, so one item (or ``threads == 1``) starts no
    thread at all. ``fn`` must not share writable state between items; exceptions are re-raised
    in the caller (the first one by position).
    """
    if threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    pool = _executor(min(threads, len(items)) - 1)
    futures = [pool.submit(fn, item) for item in items[1:]]
    first = fn(items[0])
    return [first, *(f.result() for f in futures)]
