"""Pure, explicit randomness: keys are values, split without mutation.

A :class:`~functional_dl.types.Key` is the entropy of a ``numpy.random.SeedSequence`` plus a spawn
path. ``split`` appends child indices to the path, which is exactly how ``SeedSequence.spawn`` names
its children, but without the counter that ``spawn`` mutates. Samplers build a fresh
``numpy.random.Generator`` from the key on every call, so the same key always gives the same numbers,
bit for bit, in any process. There is no global random state anywhere in the package.

Reusing a key for two different purposes gives correlated numbers; split first (as in JAX).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from functional_dl.errors import DomainError, DTypeError, KeyTypeError
from functional_dl.types import Array, IntArray, Key

__all__ = [
    "bernoulli",
    "check_key",
    "fold_in",
    "generator",
    "key",
    "normal",
    "permutation",
    "split",
    "truncated_normal",
    "uniform",
]


def key(seed: int) -> Key:
    """A root key from a non-negative integer seed.

    Example:
        >>> key(0)
        Key(entropy=0, path=())
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DomainError("random.key", f"seed must be a non-negative int, got {seed!r}")
    return Key(int(seed))


def check_key(k: object, /) -> Key:
    """``k`` itself if it is a :class:`~functional_dl.types.Key`; raises ``KeyTypeError`` otherwise.

    An int seed (or ``None``) where a key belongs, as in ``net.init(0, shape)``, is the classic
    slip. Every ``init`` checks its key here (through :func:`split` when it draws), including
    those of layers that own no parameters and never use the key, so the slip is caught the
    same way whatever the network holds. So do :func:`split`, :func:`fold_in`, every sampler
    (and so every initializer), a training step's key, and the key of a
    :class:`~functional_dl.types.Context` where a layer draws from it (``Context`` itself, a
    plain ``NamedTuple``, checks nothing).

    Example:
        >>> check_key(key(3))
        Key(entropy=3, path=())
        >>> check_key(3)
        Traceback (most recent call last):
        ...
        functional_dl.errors.KeyTypeError: expected a Key from fdl.random.key(seed), got int 3
    """
    if not isinstance(k, Key):
        raise KeyTypeError(f"expected a Key from fdl.random.key(seed), got {type(k).__name__} {k!r}")
    return k


def split(parent: Key, n: int = 2) -> tuple[Key, ...]:
    """``n`` independent child keys of ``parent``; pure, so the same call gives the same children.

    Example:
        >>> split(key(7), 2)
        (Key(entropy=7, path=(0,)), Key(entropy=7, path=(1,)))

    Raises:
        KeyTypeError: ``parent`` is not a ``Key`` (see :func:`check_key`).
    """
    check_key(parent)
    if n < 0:
        raise DomainError("random.split", f"n must be >= 0, got {n}")
    return tuple(Key(parent.entropy, (*parent.path, i)) for i in range(n))


def fold_in(parent: Key, data: int) -> Key:
    """A child key determined by ``parent`` and a non-negative integer (a step or epoch number).

    Raises:
        KeyTypeError: ``parent`` is not a ``Key`` (see :func:`check_key`).
        DomainError: ``data`` is not an integer ``>= 0`` (a float would be truncated, and two
            different steps could share a key).
    """
    check_key(parent)
    if isinstance(data, bool) or not isinstance(data, int | np.integer) or data < 0:
        raise DomainError("random.fold_in", f"data must be an integer >= 0, got {data!r}")
    # Offset folded-in children from split's small indices so fold_in(k, 0) != split(k)[0].
    return Key(parent.entropy, (*parent.path, 2**32 + int(data)))


def generator(k: Key) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` seeded by ``k``; owned by the caller, never shared.

    Every sampler below (and so every initializer) draws through here, so each refuses an int
    seed or ``None`` in place of a key the same way.

    Raises:
        KeyTypeError: ``k`` is not a ``Key`` (see :func:`check_key`).
    """
    check_key(k)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(k.entropy, spawn_key=k.path)))


def _is_single(dtype: npt.DTypeLike, caller: str) -> bool:
    dt = np.dtype(dtype)
    if dt == np.float32:
        return True
    if dt == np.float64:
        return False
    raise DTypeError(f"random.{caller}", f"dtype must be float32 or float64, got {dt}")


def normal(k: Key, shape: tuple[int, ...], dtype: npt.DTypeLike = np.float32) -> Array:
    """Standard normal samples of ``shape`` and ``dtype`` (float32 or float64)."""
    rng = generator(k)
    if _is_single(dtype, "normal"):
        return rng.standard_normal(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float64)


def uniform(
    k: Key,
    shape: tuple[int, ...],
    dtype: npt.DTypeLike = np.float32,
    low: float = 0.0,
    high: float = 1.0,
) -> Array:
    """Samples uniform on ``[low, high)`` of ``shape`` and ``dtype``."""
    rng = generator(k)
    if _is_single(dtype, "uniform"):
        return rng.random(shape, dtype=np.float32) * np.float32(high - low) + np.float32(low)
    return rng.random(shape, dtype=np.float64) * (high - low) + low


def truncated_normal(
    k: Key, shape: tuple[int, ...], dtype: npt.DTypeLike = np.float32, bound: float = 2.0
) -> Array:
    """Standard normal samples conditioned on ``|z| <= bound``, by inverse-CDF-free rejection.

    Rejection keeps the distribution exact; with ``bound=2`` about 4.6% of draws are redrawn.
    """
    if bound <= 0:
        raise DomainError("random.truncated_normal", f"bound must be positive, got {bound}")
    rng = generator(k)
    size = int(np.prod(shape, dtype=np.int64))
    out = np.empty(size, dtype=np.float64)
    filled = 0
    while filled < size:
        draw = rng.standard_normal(max(2 * (size - filled), 16))
        draw = draw[np.abs(draw) <= bound][: size - filled]
        out[filled : filled + draw.size] = draw
        filled += draw.size
    result: Array = out.reshape(shape).astype(dtype)
    return result


def bernoulli(k: Key, p: float, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Boolean samples that are ``True`` with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise DomainError("random.bernoulli", f"p must be in [0, 1], got {p}")
    out: npt.NDArray[np.bool_] = generator(k).random(shape) < p
    return out


def permutation(k: Key, n: int) -> IntArray:
    """A random permutation of ``range(n)``."""
    out: IntArray = generator(k).permutation(n)
    return out
