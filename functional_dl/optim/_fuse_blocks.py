"""A fused update over long vectors, run block by block so that its intermediate passes stay in cache.

An elementwise transformation computes each entry of its output from that entry of its inputs
alone, so running it on the slice ``[a, z)`` of every vector (updates, params and the per-entry
vectors of its state) gives the slice ``[a, z)`` of what running it on the whole vectors gives,
bit for bit: every entry goes through the same operations in the same order.

That matters for speed on long vectors. NumPy applies one operation to a whole array before the
next, so an update of ten operations over a 4 MB vector streams the vector and its temporaries
through memory ten times. Cut into blocks of :data:`BLOCK` entries, every temporary of one block
stays in the core's cache, and memory sees each input read once and each output written once.
Blocks are also the unit shared out over the library's threads (:mod:`functional_dl.threads`):
they are fixed by the layout and :data:`BLOCK`, never by the thread count, and no block reads
another's result, so one thread and two give the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import NamedTuple, TypeVar, cast

from functional_dl import _recycle as recycle
from functional_dl import threads
from functional_dl.errors import MissingError
from functional_dl.optim._fuse_groups import Layout, join, rebuild, select
from functional_dl.optim.base import GradientTransformation, add_update
from functional_dl.types import Array

__all__ = ["BLOCK", "update_in_blocks"]

S = TypeVar("S")

#: Entries per block: 64Ki float32 entries are 256 KiB per vector, so the dozen vectors of an
#: Adam step on one block (inputs, state, temporaries) fit in a 1-4 MiB L2 cache.
BLOCK = 1 << 16


def _cut(node: object, group: str, start: int, stop: int) -> object:
    """``node``, a state of the one group ``group``, with each of its vectors cut to ``[start, stop)``."""
    if isinstance(node, Mapping):
        if node and node.keys() == {group}:
            return {group: node[group][start:stop]}
        return {k: v if hasattr(v, "dtype") else _cut(v, group, start, stop) for k, v in node.items()}
    if isinstance(node, tuple):
        return rebuild(node, [_cut(child, group, start, stop) for child in node])
    return node


def _vectors(node: object, group: str) -> Iterator[Array]:
    """The group's vectors in ``node``, in an order that depends on the structure of ``node`` alone."""
    if isinstance(node, Mapping):
        if node and node.keys() == {group}:
            yield node[group]
        else:
            for v in node.values():
                if not hasattr(v, "dtype"):
                    yield from _vectors(v, group)
    elif isinstance(node, tuple):
        for child in node:
            yield from _vectors(child, group)


def _grown(node: object, group: str, size: int) -> object:
    """``node`` with each of the group's vectors replaced by a new, unfilled one of ``size`` entries."""
    if isinstance(node, Mapping):
        if node and node.keys() == {group}:
            return {group: recycle.empty((size,), node[group].dtype)}
        return {k: v if hasattr(v, "dtype") else _grown(v, group, size) for k, v in node.items()}
    if isinstance(node, tuple):
        return rebuild(node, [_grown(child, group, size) for child in node])
    return node


class _BlockParams(Mapping[str, Array]):
    """The params of one group, cut to one block, read only if the transformation asks for them."""

    def __init__(self, params: Mapping[str, Array], group: str, start: int, stop: int) -> None:
        self._params, self._group, self._start, self._stop = params, group, start, stop

    def __getitem__(self, group: str) -> Array:
        if group != self._group:
            raise MissingError("fuse", f"this block holds the group {self._group!r} only, not {group!r}")
        return self._params[group][self._start : self._stop]

    def __iter__(self) -> Iterator[str]:
        return iter((self._group,))

    def __len__(self) -> int:
        return 1


class _Job(NamedTuple):
    group: str
    start: int
    stop: int


class _Run(NamedTuple):
    """What every block of one step shares: the transformation and the inputs it reads."""

    inner: GradientTransformation[object]
    flat: Mapping[str, Array]
    states: Mapping[str, object]  # each group's part of the state
    params: Mapping[str, Array]


def _block(run: _Run, job: _Job) -> tuple[Array, object]:
    g, a, z = job
    updates, state = run.inner.update(
        {g: run.flat[g][a:z]}, _cut(run.states[g], g, a, z), _BlockParams(run.params, g, a, z)
    )
    return updates[g], state


def _first_blocks(run: _Run, jobs: Sequence[_Job]) -> list[tuple[Array, object]]:
    return [_block(run, job) for job in jobs]


def _other_blocks(run: _Run, outputs: Mapping[str, _Outputs], jobs: Sequence[_Job]) -> None:
    """Each job's block, written into ``outputs[group]``."""
    for job in jobs:
        updates, state = _block(run, job)
        outputs[job.group].write(job.start, job.stop, updates, _vectors(state, job.group))


class _Outputs(NamedTuple):
    """Where the blocks of one group go: its updates (or its new params), then its state's vectors."""

    updates: Array  # (size,): the updates, or the new params when ``params`` is given
    state: list[Array]  # the new state's vectors of the group, in the order of ``_vectors``
    params: Array | None  # (size,): the params the updates are added to, if applied here

    def write(self, start: int, stop: int, updates: Array, state: Iterator[Array]) -> None:
        if self.params is None:
            self.updates[start:stop] = updates
        else:
            add_update(self.params[start:stop], updates, out=self.updates[start:stop])
        for full, part in zip(self.state, state, strict=True):
            full[start:stop] = part


def _dealt(jobs: Sequence[_Job], n: int) -> list[list[_Job]]:
    # Round robin: neighbouring blocks cost alike, so every thread gets a fair share.
    return [list(jobs[k::n]) for k in range(min(n, len(jobs)))]


def _in_order(run: _Run, jobs: list[_Job], n: int) -> list[tuple[Array, object]]:
    """Every job's block, computed on up to ``n`` threads, returned in the order of ``jobs``."""
    dealt = _dealt(jobs, n)
    results = threads.parallel_map(partial(_first_blocks, run), dealt, n)
    # The round robin gave job i to thread i % len(dealt), as its (i // len(dealt))-th item.
    return [results[i % len(dealt)][i // len(dealt)] for i in range(len(jobs))]


def update_in_blocks(
    inner: GradientTransformation[S],
    flat: Mapping[str, Array],
    state: S,
    params: Mapping[str, Array],
    /,
    *,
    layout: Layout,
    n_threads: int,
    block: int = BLOCK,
    apply_to: Mapping[str, Array] | None = None,
) -> tuple[dict[str, Array], S]:
    """``inner.update(flat, state, params)``, computed block by block: the same updates and state.

    ``flat`` and ``params`` map each group of ``layout`` to its vector; ``state`` is ``inner``'s
    state over those vectors. Each group's vector is cut into blocks of ``block`` entries (the
    last one shorter); every block is one call of ``inner.update`` on the block's slice of every
    vector, whose results are copied into new full-length vectors. The first block of each group
    runs before the others, to learn the dtypes and structure of what ``inner`` returns. Blocks
    are shared out over ``n_threads`` threads.

    ``apply_to`` maps some groups to the vector their new params go to: for those, each block's
    updates are added to the block of ``params`` straight away (:func:`~functional_dl.optim.base.add_update`,
    what :func:`~functional_dl.optim.base.apply_updates` does) and written there, and the result
    holds the new params instead of the updates. That saves writing the updates out and reading
    them back.

    The plain form is ``inner.update(flat, state, params)`` (then ``apply_updates``);
    ``tests/optim/test_fuse_blocks.py`` checks that both give the same bits.
    """
    apply_to = apply_to or {}
    order = [g for g, _ in layout]
    groups = frozenset(order)
    sizes = {g: sum(math.prod(shape) for _, shape in entries) for g, entries in layout}
    run = _Run(
        cast(GradientTransformation[object], inner),
        flat,
        {g: select(state, groups, frozenset((g,))) for g in order},
        params,
    )
    first = [_Job(g, 0, min(block, sizes[g])) for g in order]
    rest = [_Job(g, a, min(a + block, sizes[g])) for g in order for a in range(block, sizes[g], block)]
    parts: list[object] = []
    outputs: dict[str, _Outputs] = {}
    for job, (updates, part) in zip(first, _in_order(run, first, n_threads), strict=True):
        g, size = job.group, sizes[job.group]
        grown = _grown(part, g, size)
        if g in apply_to:
            out = _Outputs(apply_to[g], list(_vectors(grown, g)), params[g])
        else:
            out = _Outputs(recycle.empty((size,), updates.dtype), list(_vectors(grown, g)), None)
        out.write(0, job.stop, updates, _vectors(part, g))
        outputs[g] = out
        parts.append(grown)
    if rest:
        threads.parallel_map(partial(_other_blocks, run, outputs), _dealt(rest, n_threads), n_threads)
    new_state = cast(S, join(parts, [frozenset((g,)) for g in order], order))
    return {g: outputs[g].updates for g in order}, new_state
