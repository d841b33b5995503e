"""Routing a combinator's flat mappings (params, grads, state) and context to its children.

A child's entries carry its *segment* as their first key component (``"0.w"`` for child 0 of a
``serial``, ``"encoder.0.w"`` for a child named ``encoder``). Routing is one pass over the keys with
a dictionary lookup per key: it runs on every forward and backward, so it stays cheap.

The checks every combinator makes on what it is given, and where each is made:

* **params** (and buffers) are a mapping with string keys, each key under one of the children's
  segments: a key naming no child, a non-string key or a non-mapping is a
  :class:`~functional_dl.errors.ParamsError` naming the combinator and the key (:func:`route`,
  :func:`strip_segment`), never silently ignored. A key *missing* from a child's share, or one the
  child does not own, is refused by the child, which names its own path. A combinator without
  children of its own to route to (``fan_out``, the fan-ins) takes no params at all
  (:func:`functional_dl._checks.check_no_params`, the layers' rule).
* **caches**: ``backward`` takes the cache its own ``forward`` made (its cache type), else a
  ``ParamsError`` (:func:`functional_dl._checks.check_cache`, the layers' rule); each child then
  checks its own share.
* **the context** is a :class:`~functional_dl.types.Context` (:func:`bad_context`, an
  :class:`~functional_dl.errors.ArgumentError`); its buffers
  are routed like the params and its key is split (a non-key is a
  :class:`~functional_dl.errors.KeyTypeError`).
* **children** are :class:`~functional_dl.types.Layer` values, checked once when the combinator is
  built (:func:`check_children`, an ``ArgumentError``), so ``serial(L.relu)`` fails at once, not at
  the first call; a bad hyperparameter (``fan_out(0)``, ``named("a.b", f)``) is a
  :class:`~functional_dl.errors.DomainError`.

Each check is a type comparison or a length comparison per call, or one per key in a pass the
routing makes anyway: nothing per element, no extra Python call per child on the good path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functional_dl.errors import ArgumentError, ParamsError
from functional_dl.random import split
from functional_dl.types import EMPTY, Array, Buffers, Context, Key, Layer, Params

__all__ = [
    "bad_context",
    "check_children",
    "child_contexts",
    "index_of",
    "join_children",
    "route",
    "strip_segment",
]


def index_of(segments: Sequence[str]) -> dict[str, int]:
    """``{segment: position}``, the lookup table :func:`route` uses."""
    return {s: i for i, s in enumerate(segments)}


def _not_a_mapping(mapping: object, combinator: str, what: str) -> ParamsError:
    return ParamsError(combinator, f"expected {what} as a mapping of arrays, got {type(mapping).__name__}")


def route(
    mapping: Params, index: Mapping[str, int], combinator: str, what: str = "params"
) -> list[dict[str, Array]]:
    """Split a flat mapping into one mapping per child by the leading segment of each key, stripping it.

    Raises:
        ParamsError: ``mapping`` is not a mapping, or a key is not a string or names no child.
    """
    parts: list[dict[str, Array]] = [{} for _ in range(len(index))]
    try:
        items = mapping.items()
    except AttributeError:
        raise _not_a_mapping(mapping, combinator, what) from None
    for name, value in items:
        try:
            head, _, tail = name.partition(".")
        except AttributeError:
            raise ParamsError(combinator, f"{what} keys must be strings, got {name!r}") from None
        i = index.get(head)
        if i is None or not tail:
            raise ParamsError(
                combinator, f"unexpected key {name!r}: this network's children are {', '.join(index)}"
            )
        parts[i][tail] = value
    return parts


def strip_segment(mapping: Params, segment: str, combinator: str, what: str = "params") -> dict[str, Array]:
    """The entries under ``segment + "."`` with that prefix removed; any other key is refused.

    This is :func:`route` for a single child (``named``): a key outside the prefix would otherwise
    be dropped without a word.

    Raises:
        ParamsError: ``mapping`` is not a mapping, or a key is not under ``segment``.
    """
    lead = segment + "."
    n = len(lead)
    try:
        inner = {k[n:]: v for k, v in mapping.items() if k.startswith(lead)}
    except AttributeError:
        if not isinstance(mapping, Mapping):
            raise _not_a_mapping(mapping, combinator, what) from None
        bad = next(k for k in mapping if not isinstance(k, str))
        raise ParamsError(combinator, f"{what} keys must be strings, got {bad!r}") from None
    if len(inner) != len(mapping):
        stray = sorted(k for k in mapping if not k.startswith(lead) or len(k) == n)
        raise ParamsError(
            combinator, f"unexpected {what} keys {stray}: every key of this network starts with {lead!r}"
        )
    return inner


def bad_context(ctx: object, combinator: str) -> ArgumentError:
    """The error for a ``ctx`` that is not a :class:`~functional_dl.types.Context` (``forward(p, x, 1)``)."""
    return ArgumentError(
        combinator,
        f"ctx must be a Context (fdl.Context(train=True, key=...)), got {type(ctx).__name__} {ctx!r:.60}",
    )


def check_children(layers: tuple[object, ...], combinator: str) -> tuple[Layer[Any], ...]:
    """The layers as a tuple, after checking each is a :class:`Layer` (a classic slip: ``L.relu``).

    Raises:
        ArgumentError: an argument that is not a ``Layer``, naming its position and what it is.
    """
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = " (did you write L.relu instead of L.relu()?)" if callable(layer) else ""
            raise ArgumentError(combinator, f"argument {i} is a {type(layer).__name__}, not a Layer{hint}")
    return tuple(layers)  # type: ignore[arg-type]  # checked just above


def join_children(parts: Sequence[Params], segments: Sequence[str]) -> dict[str, Array]:
    """The inverse of :func:`route`: prefix each child's keys with its segment and merge."""
    return {f"{seg}.{name}": v for seg, part in zip(segments, parts, strict=True) for name, v in part.items()}


def child_contexts(ctx: Context, index: Mapping[str, int], combinator: str) -> Sequence[Context]:
    """One context per child: ``ctx.key`` split one key per child, ``ctx.buffers`` routed by segment."""
    n = len(index)
    if ctx.key is None and not ctx.buffers:
        return (ctx,) * n  # the common case: nothing to route, no allocation per child
    keys: Sequence[Key | None] = split(ctx.key, n) if ctx.key is not None else (None,) * n
    states: Sequence[Buffers] = (
        route(ctx.buffers, index, combinator, "buffers") if ctx.buffers else (EMPTY,) * n
    )
    return [Context(ctx.train, k, s, ctx.batch_rows) for k, s in zip(keys, states, strict=True)]
