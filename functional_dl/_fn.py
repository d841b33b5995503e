"""Typed facade over toolz: the one module that imports it.

toolz ships no type information, so a direct import would turn every value that passes through it
into ``Any``. Here each function we use gets a precise signature (``@overload``-ed for ``pipe`` and
``compose_left`` so a pipeline whose links do not line up is a type error), and the rest of the
package imports from here only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

import toolz

__all__ = ["accumulate", "compose_left", "groupby", "keymap", "merge", "pipe", "valmap"]

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")
K = TypeVar("K")
K2 = TypeVar("K2")
V = TypeVar("V")
V2 = TypeVar("V2")


@overload
def pipe(x: A, /) -> A: ...
@overload
def pipe(x: A, f1: Callable[[A], B], /) -> B: ...
@overload
def pipe(x: A, f1: Callable[[A], B], f2: Callable[[B], C], /) -> C: ...
@overload
def pipe(x: A, f1: Callable[[A], B], f2: Callable[[B], C], f3: Callable[[C], D], /) -> D: ...
@overload
def pipe(
    x: A, f1: Callable[[A], B], f2: Callable[[B], C], f3: Callable[[C], D], f4: Callable[[D], E], /
) -> E: ...
@overload
def pipe(
    x: A,
    f1: Callable[[A], B],
    f2: Callable[[B], C],
    f3: Callable[[C], D],
    f4: Callable[[D], E],
    f5: Callable[[E], F],
    /,
) -> F: ...
def pipe(x: Any, *fs: Callable[[Any], Any]) -> Any:
    """Thread ``x`` through the functions left to right: ``pipe(x, f, g) == g(f(x))``.

    Example:
        >>> pipe(3, lambda v: v + 1, str)
        '4'
    """
    return toolz.pipe(x, *fs)


@overload
def compose_left(f1: Callable[[A], B], /) -> Callable[[A], B]: ...
@overload
def compose_left(f1: Callable[[A], B], f2: Callable[[B], C], /) -> Callable[[A], C]: ...
@overload
def compose_left(f1: Callable[[A], B], f2: Callable[[B], C], f3: Callable[[C], D], /) -> Callable[[A], D]: ...
@overload
def compose_left(
    f1: Callable[[A], B], f2: Callable[[B], C], f3: Callable[[C], D], f4: Callable[[D], E], /
) -> Callable[[A], E]: ...
def compose_left(*fs: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The left-to-right composition: ``compose_left(f, g)(x) == g(f(x))``.

    Example:
        >>> compose_left(len, str)([1, 2])
        '2'
    """
    composed: Callable[[Any], Any] = toolz.compose_left(*fs)
    return composed


def valmap(f: Callable[[V], V2], d: Mapping[K, V]) -> dict[K, V2]:
    """A new dict with ``f`` applied to every value.

    Example:
        >>> valmap(abs, {"a": -1})
        {'a': 1}
    """
    out: dict[K, V2] = toolz.valmap(f, d, factory=dict)
    return out


def keymap(f: Callable[[K], K2], d: Mapping[K, V]) -> dict[K2, V]:
    """A new dict with ``f`` applied to every key.

    Example:
        >>> keymap(str.upper, {"a": 1})
        {'A': 1}
    """
    out: dict[K2, V] = toolz.keymap(f, d, factory=dict)
    return out


def merge(*ds: Mapping[K, V]) -> dict[K, V]:
    """A new dict with the items of every mapping; later mappings win on equal keys.

    Example:
        >>> merge({"a": 1}, {"b": 2})
        {'a': 1, 'b': 2}
    """
    out: dict[K, V] = toolz.merge(*ds, factory=dict)
    return out


def groupby(key: Callable[[V], K], items: Iterable[V]) -> dict[K, list[V]]:
    """Group ``items`` into lists by ``key(item)``, in order of first appearance.

    Example:
        >>> groupby(len, ["a", "bb", "c"])
        {1: ['a', 'c'], 2: ['bb']}
    """
    out: dict[K, list[V]] = toolz.groupby(key, items)
    return out


def accumulate(step: Callable[[A, B], A], items: Iterable[B], initial: A) -> Iterable[A]:
    """The running fold ``initial, step(initial, b0), step(step(initial, b0), b1), ...``.

    Example:
        >>> list(accumulate(lambda acc, b: acc + b, [1, 2, 3], 0))
        [0, 1, 3, 6]
    """
    out: Iterable[A] = toolz.accumulate(step, items, initial)
    return out
