"""Checks of a factory's hyperparameters, shared by layers, optimizers, schedules and callbacks.

A factory checks its arguments once, when it is called, so a NaN learning rate or a bool where a
count belongs is reported where it was written, not as a NumPy error (or a silently wrong number)
at the first update. Each helper returns the argument normalised (a Python ``int``, ``float``,
``bool`` or ``str``) and otherwise raises :class:`~functional_dl.errors.DomainError` naming the
function (``where``: ``"adam"``, ``"cosine_decay"``, a layer's name), the argument and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

import numpy as np

from functional_dl.errors import DomainError, LayerError

__all__ = ["bounded", "flag", "one_of", "positive_int", "rate", "real", "text", "within"]


def positive_int(value: object, what: str, where: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
        raise DomainError(where, f"{what} must be {kind}, got {value!r}")
    return int(value)


def flag(value: object, what: str, where: str) -> bool:
    """``value`` when it is a bool (a string such as ``"no"`` would otherwise count as true)."""
    if not isinstance(value, bool | np.bool_):
        raise DomainError(where, f"{what} must be a bool, got {value!r}")
    return bool(value)


def real(value: object, what: str, where: str) -> float:
    """``value`` as a finite ``float`` when it is a real number (not a bool, not a numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DomainError(where, f"{what} must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise DomainError(where, f"{what} must be finite, got {value!r}")
    return result


def _interval(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if high is None:
        return "positive" if low == 0 and open_low else f"{'>' if open_low else '>='} {low:g}"
    if low is None:
        return f"{'<' if open_high else '<='} {high:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def bounded(
    value: object,
    what: str,
    where: str,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """:func:`real`, and within ``[low, high]`` (an end ``None`` is unbounded; ``open_*`` excludes it).

    Example:
        >>> bounded(0.9, "b1", "adam", 0.0, 1.0, open_high=True)
        0.9
        >>> bounded(1.0, "b1", "adam", 0.0, 1.0, open_high=True)
        Traceback (most recent call last):
        functional_dl.errors.DomainError: adam: b1 must be in [0, 1), got 1.0
    """
    result = real(value, what, where)
    too_low = low is not None and (result <= low if open_low else result < low)
    too_high = high is not None and (result >= high if open_high else result > high)
    if too_low or too_high:
        raise DomainError(where, f"{what} must be {_interval(low, high, open_low, open_high)}, got {value!r}")
    return result


def rate(value: float | Callable[[int], float], what: str, where: str) -> float | Callable[[int], float]:
    """A learning rate: a schedule (any callable, checked when it is called) or a real number >= 0."""
    if callable(value):
        return value
    return bounded(value, what, where, 0.0)


def one_of(value: object, what: str, where: str, options: Collection[str]) -> str:
    """``value`` when it is one of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        raise DomainError(where, f"{what} must be one of {sorted(options)}, got {value!r}")
    return value


def text(value: object, what: str, where: str) -> str:
    """``value`` when it is a non-empty string (a name, a path, a prefix given as a string)."""
    if not isinstance(value, str) or not value:
        raise DomainError(where, f"{what} must be a non-empty string, got {value!r}")
    return value


@contextmanager
def within(where: str) -> Iterator[None]:
    """A factory built from other factories: their errors come out with ``where`` prefixed to the path.

    ``adam(b1=2.0)`` then reports ``"adam.scale_by_adam: b1 must be in [0, 1), got 2.0"``: the
    function called and the part that refused the value. An error already naming ``where`` (the
    factory's own checks) passes unchanged.
    """
    try:
        yield
    except LayerError as err:
        if err.path == where or err.path.startswith(where + "."):
            raise
        raise err.under(where) from None
