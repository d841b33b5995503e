"""Walking a :data:`~functional_dl.types.Flow`: one array, or a (nested) tuple of arrays and ``None``.

The multi-input/multi-output rules are stated in :mod:`functional_dl.types`; these helpers are
what the combinators, inspection and :mod:`functional_dl.testing` use to follow them. A *leaf* is
anything that is not a tuple (an array or ``None``); its *path* is the tuple of indices that
reaches it (``()`` for a single array, ``(1, 0)`` for ``x[1][0]``). A ``NamedTuple`` keeps its
type when a flow is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeAlias, TypeGuard

import numpy as np

from functional_dl.errors import ShapeError
from functional_dl.types import Array, BoolArray, Flow, IntArray

__all__ = [
    "Leaf",
    "Path",
    "add_flows",
    "differentiable",
    "leaf_at",
    "leaf_name",
    "leaves",
    "map_leaves",
    "replace_leaf",
]

#: A position in a flow: the tuple indices leading to a leaf.
Path: TypeAlias = tuple[int, ...]
#: What a flow holds at a path: an array or ``None``.
Leaf: TypeAlias = Array | IntArray | BoolArray | None


def differentiable(leaf: object) -> TypeGuard[Array]:
    """Whether a leaf carries a gradient: a floating-point array (not ids, lengths, masks or ``None``)."""
    return isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f"


def leaves(flow: Flow | None, path: Path = ()) -> Iterator[tuple[Path, Leaf]]:
    """Every leaf with its path, depth first, left to right."""
    if isinstance(flow, tuple):
        for i, part in enumerate(flow):
            yield from leaves(part, (*path, i))
    else:
        yield path, flow


def _rebuilt(like: tuple[Flow | None, ...], parts: list[Flow | None]) -> tuple[Flow | None, ...]:
    # A NamedTuple input record comes back as the same record; a plain tuple as a plain tuple.
    make: Callable[[list[Flow | None]], tuple[Flow | None, ...]] | None = getattr(like, "_make", None)
    return make(parts) if make is not None else tuple(parts)


def map_leaves(f: Callable[[Path, Leaf], Flow | None], flow: Flow | None, path: Path = ()) -> Flow | None:
    """``flow`` with every leaf replaced by ``f(path, leaf)``, same nesting (and NamedTuple types)."""
    if isinstance(flow, tuple):
        return _rebuilt(flow, [map_leaves(f, part, (*path, i)) for i, part in enumerate(flow)])
    return f(path, flow)


def leaf_at(flow: Flow | None, path: Path) -> Flow | None:
    """The leaf of ``flow`` at ``path``.

    Raises:
        ShapeError: ``flow`` has no entry at ``path`` (it is not nested that way).
    """
    for i in path:
        if not isinstance(flow, tuple) or not -len(flow) <= i < len(flow):
            raise ShapeError(leaf_name(path), "no entry here: the input is not nested this way")
        flow = flow[i]
    return flow


def replace_leaf(flow: Flow | None, path: Path, value: Flow | None) -> Flow | None:
    """``flow`` with the leaf at ``path`` replaced by ``value`` (a new tuple; ``flow`` is unchanged)."""
    if not path:
        return value
    if not isinstance(flow, tuple):
        raise ShapeError(leaf_name(path), "no entry here: the input is not nested this way")
    head, rest = path[0], path[1:]
    parts = list(flow)
    parts[head] = replace_leaf(parts[head], rest, value)
    return _rebuilt(flow, parts)


def leaf_name(path: Path, root: str = "x") -> str:
    """``"x"`` for the whole flow, ``"x[1][0]"`` for a nested entry."""
    return root + "".join(f"[{i}]" for i in path)


def add_flows(a: Flow | None, b: Flow | None) -> Flow | None:
    """``a + b`` entry by entry, ``None`` counting as zero: how ``fan_out`` sums its branches' gradients.

    Returns a fresh array wherever both sides hold one, else the side that is not ``None``.
    """
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return _rebuilt(a, [add_flows(x, y) for x, y in zip(a, b, strict=True)])
    if isinstance(a, tuple) or isinstance(b, tuple):
        raise ShapeError("fan_out", "cannot add a tuple gradient to one of a different structure")
    total: Array = np.add(a, b)
    return total
