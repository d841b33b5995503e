"""Walking optimizer state: find and replace the sub-states of a given type, wherever they sit.

Optimizer state is a tree of NamedTuples, tuples and mappings with arrays and numbers at the
leaves. The helpers that read or change something in it (the learning rate in force, injected
hyperparameters, the loss seen by reduce-on-plateau) find their sub-state by its type, so they work
however deeply it is nested in chains, masks, partitions and wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

__all__ = ["find_states", "replace_states"]

T = TypeVar("T")
S = TypeVar("S")


def _is_namedtuple(node: object) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def find_states(state: object, kind: type[T]) -> Iterator[T]:
    """Every sub-state of type ``kind`` in ``state``, depth first, outermost first."""
    if isinstance(state, kind):
        yield state
    if isinstance(state, tuple):
        for child in state:
            yield from find_states(child, kind)
    elif isinstance(state, Mapping):
        for child in state.values():
            if not hasattr(child, "dtype"):  # arrays are leaves: skip them cheaply
                yield from find_states(child, kind)


def replace_states(state: S, kind: type[T], fn: Callable[[T], T]) -> S:
    """A copy of ``state`` with every sub-state ``x`` of type ``kind`` replaced by ``fn(x)``.

    Only the path to each replaced sub-state is rebuilt; everything else is shared. Inside a
    replaced sub-state, ``fn`` decides what happens (nested sub-states of the same type are not
    visited again).
    """
    new: object
    if isinstance(state, kind):
        new = fn(state)
    elif isinstance(state, tuple):
        children = [replace_states(child, kind, fn) for child in state]
        if all(a is b for a, b in zip(children, state, strict=True)):
            return state
        new = type(state)(*children) if _is_namedtuple(state) else tuple(children)
    elif isinstance(state, Mapping):
        changed = {k: replace_states(v, kind, fn) for k, v in state.items() if not hasattr(v, "dtype")}
        if all(changed[k] is state[k] for k in changed):
            return state
        new = {**state, **changed}
    else:
        return state
    return new  # type: ignore[return-value]  # same type as ``state`` by construction
