"""A fused state cut by vector groups and joined again, so that groups can update separately.

A fused transformation keeps each per-parameter quantity as a mapping from group name (one
vector each) to array. An elementwise transformation computes each entry from that entry alone,
so it may run on any subset of the groups with the matching subset of its state; whatever else
its state holds (step counts, learning rates) does not depend on the entries, so every subset
computes the same. :func:`select` cuts a state down to a subset of groups and :func:`join` puts
the parts back together (:mod:`functional_dl.optim._fuse_blocks` cuts each group further, into
blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["Layout", "join", "rebuild", "select"]

#: ``((group, ((key, shape), ...)), ...)`` in the params' key order; plain data, so it checkpoints.
Layout = tuple[tuple[str, tuple[tuple[str, tuple[int, ...]], ...]], ...]


def rebuild(node: tuple[object, ...], children: list[object]) -> object:
    make: Callable[..., object] = type(node)  # a NamedTuple takes its fields positionally
    return make(*children) if hasattr(node, "_fields") else tuple(children)


def select(node: object, groups: frozenset[str], subset: frozenset[str]) -> object:
    """``node`` with every mapping keyed by exactly ``groups`` cut down to the keys in ``subset``."""
    if isinstance(node, Mapping):
        if node and node.keys() == groups:
            return {g: node[g] for g in node if g in subset}
        return {k: v if hasattr(v, "dtype") else select(v, groups, subset) for k, v in node.items()}
    if isinstance(node, tuple):
        return rebuild(node, [select(child, groups, subset) for child in node])
    return node


def join(parts: Sequence[object], subsets: Sequence[frozenset[str]], order: Sequence[str]) -> object:
    """The states ``parts`` (of the groups ``subsets``) as one state over all groups, in ``order``.

    The first part guides the structure: a mapping keyed by its subset is merged from every part;
    anything else that is not a container (a step count, a learning rate) is taken from it.
    """
    first = parts[0]
    if isinstance(first, Mapping):
        if first and first.keys() == subsets[0]:
            merged: dict[str, object] = {}
            for part in parts:
                assert isinstance(part, Mapping)
                merged.update(part)
            return {g: merged[g] for g in order}
        joined = {}
        for k, v in first.items():
            children = [part[k] for part in parts if isinstance(part, Mapping)]
            joined[k] = v if hasattr(v, "dtype") else join(children, subsets, order)
        return joined
    if isinstance(first, tuple):
        children = [
            join([part[i] for part in parts if isinstance(part, tuple)], subsets, order)
            for i in range(len(first))
        ]
        return rebuild(first, children)
    return first
