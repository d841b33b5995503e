"""Routing a combinator's flat mappings (params, grads, state) and context to its children.

A child's entries carry its *segment* as their first key component (``"0.w"`` for child 0 of a
``serial``, ``"encoder.0.w"`` for a child named ``encoder``). Routing is one pass over the keys with
a dictionary lookup per key: it runs on every forward and backward, so it stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from functional_dl.errors import ParamsError
from functional_dl.random import split
from functional_dl.types import EMPTY, Array, Buffers, Context, Key, Params

__all__ = ["child_contexts", "index_of", "join_children", "route"]


def index_of(segments: Sequence[str]) -> dict[str, int]:
    """``{segment: position}``, the lookup table :func:`route` uses."""
    return {s: i for i, s in enumerate(segments)}


def route(mapping: Params, index: Mapping[str, int], combinator: str) -> list[dict[str, Array]]:
    """Split a flat mapping into one mapping per child by the leading segment of each key, stripping it.

    Raises:
        ParamsError: ``mapping`` is not a mapping, or a key's leading segment names no child.
    """
    parts: list[dict[str, Array]] = [{} for _ in range(len(index))]
    try:
        items = mapping.items()
    except AttributeError:  # a list or None where the params belong
        raise ParamsError(combinator, f"expected a mapping of arrays, got {type(mapping).__name__}") from None
    for name, value in items:
        head, _, tail = name.partition(".")
        i = index.get(head)
        if i is None or not tail:
            raise ParamsError(
                combinator, f"unexpected key {name!r}: this network's children are {', '.join(index)}"
            )
        parts[i][tail] = value
    return parts


def join_children(parts: Sequence[Params], segments: Sequence[str]) -> dict[str, Array]:
    """The inverse of :func:`route`: prefix each child's keys with its segment and merge."""
    return {f"{seg}.{name}": v for seg, part in zip(segments, parts, strict=True) for name, v in part.items()}


def child_contexts(ctx: Context, index: Mapping[str, int], combinator: str) -> Sequence[Context]:
    """One context per child: ``ctx.key`` split one key per child, ``ctx.buffers`` routed by segment."""
    n = len(index)
    if ctx.key is None and not ctx.buffers:
        return (ctx,) * n  # the common case: nothing to route, no allocation per child
    keys: Sequence[Key | None] = split(ctx.key, n) if ctx.key is not None else (None,) * n
    states: Sequence[Buffers] = route(ctx.buffers, index, combinator) if ctx.buffers else (EMPTY,) * n
    return [Context(ctx.train, k, s, ctx.batch_rows) for k, s in zip(keys, states, strict=True)]
