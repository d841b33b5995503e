"""Fusing: run an elementwise transformation on one contiguous vector per dtype.

A small network has few, small parameter arrays, so an optimizer step is bound by the fixed cost
of each NumPy call, not by arithmetic: Adam makes about a dozen passes *per array*. ``fuse``
gathers the updates (and params) into one vector per dtype, runs the inner transformation once on
each vector, and hands back per-key views of the result. For the 40-100-100-10 MLP of the
benchmarks (six arrays) this cuts Adam's step by more than half.

Large arrays are the other way round: the copy into the joint vector costs as much as a few of
Adam's passes, and the call overhead it saves is nothing beside the arithmetic. So an array of at
least ``own_vector_from`` entries (64Ki by default) keeps a vector of its own, a flat view of the
array itself (no copy). A vector longer than a block (64Ki entries) is updated block by block,
so that the inner transformation's dozen passes over each block stay in cache instead of
streaming the whole vector through memory a dozen times; when there is enough work (a quarter of
a million entries), the blocks are shared out over the library's threads
(:mod:`functional_dl.threads`), since NumPy releases the GIL while it works. An elementwise
update of a block is the block of the whole update, whatever thread computes it, so neither the
blocks nor the thread count change a bit (:mod:`functional_dl.optim._fuse_blocks`).

Only *elementwise* transformations may be fused: ones whose output at an entry depends on that
entry alone (and on scalars), such as momentum, Adam, RMSprop or unmasked weight decay. Each
transformation declares it (``GradientTransformation.elementwise``); anything that looks at keys
or at one array as a whole (masks, partitions, per-layer trust ratios, per-array or global
clipping) is refused when ``fuse`` is called, since on a flat vector it would silently mean
something else.

State
-----
The state is a :class:`FusedState`: the layout (which keys, of which shapes, make up each
vector) and the inner state, whose per-parameter mappings hold one vector per group under the
group's name: the dtype's name (``"float32"``) for the vector joining the small arrays, and
``"float32:<key>"`` for a large array's own vector. :func:`unfused` shows any state with every
fused part cut back into per-parameter views, so Adam's moments read ``mu["0.w"]`` however they
are stored; :func:`find_state` reads one sub-state that way.

Example:
    >>> import numpy as np
    >>> from functional_dl.optim import ScaleByAdamState, chain, optimizer
    >>> from functional_dl.optim import scale_by_adam, scale_by_learning_rate
    >>> opt = optimizer(fuse(chain(scale_by_adam(), scale_by_learning_rate(0.5))))
    >>> state = opt.init({"w": np.ones((2, 2)), "b": np.zeros(2)})
    >>> state, params = opt.update(state, {"w": np.ones((2, 2)), "b": np.ones(2)})
    >>> params["w"].tolist(), params["b"].tolist()
    ([[0.5, 0.5], [0.5, 0.5]], [-0.5, -0.5])
    >>> find_state(state, ScaleByAdamState).mu["b"]
    array([0.1, 0.1])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from functional_dl import _recycle as recycle
from functional_dl import threads
from functional_dl.errors import DomainError, ParamsError
from functional_dl.optim._fuse_blocks import BLOCK, update_in_blocks
from functional_dl.optim._fuse_groups import Layout
from functional_dl.optim.base import (
    GradientTransformation,
    Optimizer,
    _optimizer_applying,
    add_update,
    check_state,
    transformation_of,
)
from functional_dl.optim.state_tree import find_states
from functional_dl.types import Array, Params

__all__ = ["OWN_VECTOR_FROM", "FusedState", "Layout", "find_state", "fuse", "unfused"]

S = TypeVar("S")
T = TypeVar("T")

#: Arrays of at least this many entries keep their own vector (see the module docstring).
OWN_VECTOR_FROM = 1 << 16
#: Below this many entries in all (a quarter of a million), a step is too short to share out.
_THREADED_FROM = 1 << 18


class FusedState(NamedTuple, Generic[S]):
    """The state of a fused transformation.

    Attributes:
        layout: the keys and shapes gathered into each dtype's vector, in order.
        inner: the inner transformation's state, one vector per dtype (keyed by the dtype's name)
            where the unfused state has one array per parameter; :func:`unfused` shows it per
            parameter.
    """

    layout: Layout
    inner: S


# ``dtype.name`` is computed in Python on every access (a few microseconds, about the cost of a
# whole Adam pass over a small vector), so each dtype's name is looked up once and remembered.
_DTYPE_NAMES: dict[np.dtype[np.generic], str] = {}


def _dtype_name(dtype: np.dtype[np.generic]) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def _layout(params: Params, own_vector_from: int = OWN_VECTOR_FROM) -> Layout:
    groups: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for k, p in params.items():
        name = _dtype_name(p.dtype)
        groups.setdefault(f"{name}:{k}" if p.size >= own_vector_from else name, []).append((k, p.shape))
    return tuple((group, tuple(entries)) for group, entries in groups.items())


def _group_dtype(group: str) -> str:
    return group.partition(":")[0]


class _Mismatch(Exception):
    """The mapping does not have the keys, shapes or dtypes of the layout."""


def _concat(mapping: Params, group: str, entries: tuple[tuple[str, tuple[int, ...]], ...]) -> Array:
    # The layout comes from the state, so the mapping is checked against it as it is read: a few
    # comparisons per array, cheaper than working the layout out again on every step.
    parts = []
    for k, shape in entries:
        a = mapping.get(k)
        if a is None or a.shape != shape:
            raise _Mismatch
        parts.append(a.ravel())
    # One array is its own vector: a flat view of it, read and never written (the ownership rule).
    vector = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if _dtype_name(vector.dtype) != _group_dtype(group):
        raise _Mismatch
    return vector


def _gather(mapping: Params, layout: Layout) -> dict[str, Array]:
    vectors = {group: _concat(mapping, group, entries) for group, entries in layout}
    if len(mapping) != sum(len(entries) for _, entries in layout):
        raise _Mismatch
    return vectors


class _LazyGather(Mapping[str, Array]):
    """The params gathered per dtype, concatenated only if the inner transformation reads them.

    Most elementwise chains (Adam, momentum, RMSprop) never look at the params; weight decay
    does. Gathering on first access saves a copy of every parameter on each step of the former.
    """

    def __init__(self, params: Params, layout: Layout) -> None:
        self._params = params
        self._entries = dict(layout)
        self._done: dict[str, Array] = {}

    def __getitem__(self, group: str) -> Array:
        vector = self._done.get(group)
        if vector is None:
            entries = self._entries[group]  # a KeyError for an unknown group, as a dict would raise
            vector = self._done[group] = _concat(self._params, group, entries)
        return vector

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _scatter(
    flat: Mapping[str, Array], layout: Layout, skip: Mapping[str, Array] | None = None
) -> dict[str, Array]:
    # ``skip``: keys whose vector is not in ``flat`` (their updates went straight into new params).
    out: dict[str, Array] = {}
    for group, entries in layout:
        if skip and entries[0][0] in skip:
            continue
        vector = flat[group]
        start = 0
        for k, shape in entries:
            stop = start + math.prod(shape)
            out[k] = vector[start:stop].reshape(shape)
            start = stop
    return out


def _fuse_init(inner: GradientTransformation[S], params: Params, /, *, own_vector_from: int) -> FusedState[S]:
    layout = _layout(params, own_vector_from)
    return FusedState(layout, inner.init(_gather(params, layout)))


def _blockable(inner_state: object) -> bool:
    # A fused transformation inside this one keeps the shapes of whole vectors in its layout, so
    # it cannot run on blocks of them; such a nesting is rare and runs as one call.
    return next(find_states(inner_state, FusedState), None) is None


def _threads_for(total: int) -> int:
    # A small network never pays for asking.
    return 1 if total < _THREADED_FROM else threads.num_threads()


def _fused(
    inner: GradientTransformation[S],
    updates: Params,
    state: FusedState[S],
    params: Params,
    /,
    *,
    apply: bool,
) -> tuple[dict[str, Array], dict[str, Array], FusedState[S]]:
    """The fused update: ``(updates, new params, state)``, per key.

    With ``apply``, the blocks of every vector that holds one array alone add their updates to the
    params as they go (:func:`update_in_blocks`'s ``apply_to``): those keys get new params instead
    of updates. Without it, or on the short path, every key gets its update.
    """
    check_state("fuse", state, FusedState)
    layout = state.layout
    new_params: dict[str, Array] = {}
    try:
        flat = _gather(updates, layout)
        lazy = _LazyGather(params, layout)
        sizes = [v.size for v in flat.values()]
        total = sum(sizes)
        if (total < _THREADED_FROM and max(sizes) <= BLOCK) or not _blockable(state.inner):
            flat_updates, new_inner = inner.update(flat, state.inner, lazy)
        else:
            apply_to: dict[str, Array] = {}
            for group, entries in layout:
                if apply and len(entries) == 1:
                    key, shape = entries[0]
                    new_params[key] = recycle.empty(shape, params[key].dtype)
                    apply_to[group] = new_params[key].reshape(-1)
            flat_updates, new_inner = update_in_blocks(
                inner,
                flat,
                state.inner,
                lazy,
                layout=layout,
                n_threads=_threads_for(total),
                block=BLOCK,
                apply_to=apply_to,
            )
    except _Mismatch:
        raise ParamsError(
            "fuse",
            "the updates or params do not have the keys, shapes and dtypes the state was built for: "
            f"expected {_describe(layout)}, got updates {_describe(_layout(updates))}, "
            f"params {_describe(_layout(params))}",
        ) from None
    return _scatter(flat_updates, layout, skip=new_params), new_params, FusedState(layout, new_inner)


def _fuse_update(
    inner: GradientTransformation[S], updates: Params, state: FusedState[S], params: Params, /
) -> tuple[Params, FusedState[S]]:
    per_key, _, new_state = _fused(inner, updates, state, params, apply=False)
    return per_key, new_state


def _fuse_applied(
    inner: GradientTransformation[S], updates: Params, state: FusedState[S], params: Params, /
) -> tuple[Params, FusedState[S]]:
    """``params + _fuse_update(...)``: the new params (new arrays) and the new state."""
    per_key, new_params, new_state = _fused(inner, updates, state, params, apply=True)
    out: dict[str, Array] = {}
    for k, p in params.items():
        if k in new_params:
            out[k] = new_params[k]
            continue
        u = per_key[k]
        # add_update's common case inline: small networks take this path for every key, every step.
        out[k] = p + u if u.dtype == p.dtype else add_update(p, u)
    return out, new_state


def _describe(layout: Layout) -> str:
    return ", ".join(
        f"{k} {shape} {_group_dtype(group)}" for group, entries in layout for k, shape in entries
    )


def fuse(
    inner: GradientTransformation[S], *, own_vector_from: int = OWN_VECTOR_FROM
) -> GradientTransformation[FusedState[S]]:
    """Run the elementwise transformation ``inner`` on one flat vector per dtype.

    Update rule: ``u = split(inner(concat(g)))``, where ``concat`` joins the arrays
    of one dtype in key order and ``split`` cuts the result back into views of each shape.

    The result is the same, entry for entry and bit for bit, as ``inner`` applied key by key; only
    the number of NumPy calls changes. See the module docstring for which transformations qualify.

    Args:
        inner: an elementwise transformation (or chain of them): ``inner.elementwise`` is true.
        own_vector_from: an array of at least this many entries keeps a vector of its own (a view
            of it, not a copy); the rest of each dtype share one.

    Raises:
        DomainError: when ``inner`` is not elementwise (a mask, a partition, a trust ratio, a
            clip by norm, or a transformation of your own that does not declare itself so), or
            ``own_vector_from`` is not a positive integer, or ``inner`` is not a transformation.
    """
    inner = transformation_of(inner, "fuse")
    if isinstance(own_vector_from, bool) or not isinstance(own_vector_from, int) or own_vector_from < 1:
        raise DomainError("fuse", f"own_vector_from must be a positive integer, got {own_vector_from!r}")
    if not inner.elementwise:
        raise DomainError(
            "fuse",
            "the transformation given is not elementwise (it reads keys or whole arrays), so on one flat "
            "vector per dtype it would mean something else; use it unfused, or fuse only the "
            "elementwise part: chain(fuse(chain(...)), <the rest>)",
        )
    return GradientTransformation(
        partial(_fuse_init, inner, own_vector_from=own_vector_from),
        partial(_fuse_update, inner),
        elementwise=True,
    )


def _fused_optimizer(
    inner: GradientTransformation[S], *, own_vector_from: int = OWN_VECTOR_FROM
) -> Optimizer[FusedState[S]]:
    """``optimizer(fuse(inner))``, adding the updates of large arrays to their params as they are made.

    Update rule: ``p = p + split(inner(concat(g)))``, as :func:`fuse`; the same bits as
    ``optimizer(fuse(inner, own_vector_from=...))`` (``tests/optim/test_fuse_threads.py`` checks
    it for every elementwise transformation of the registry). An array with a vector of its own
    that is updated block by block gets its new params block by block too, so its updates are
    never written out in full and read back: one pass over memory fewer. The named optimizers
    whose chain is elementwise are built this way; a chain of one's own gets the same numbers from
    ``optimizer(fuse(chain(...)))``.

    Raises:
        DomainError: when ``inner`` is not elementwise, or ``own_vector_from`` is not a positive
            integer, as :func:`fuse`.
    """
    return _optimizer_applying(fuse(inner, own_vector_from=own_vector_from), partial(_fuse_applied, inner))


def _views(flat: Mapping[str, Array], layout: Layout) -> dict[str, Array]:
    views = _scatter(flat, layout)
    for view in views.values():
        view.flags.writeable = False  # a window onto the state, not a copy to edit
    return views


def _per_param(node: object, layout: Layout | None) -> object:
    # Inside a fused state (``layout`` given), a mapping keyed by exactly the dtype names holds
    # one vector per dtype: cut it per parameter. Unchanged subtrees are returned as they are.
    if isinstance(node, FusedState):
        # A fused state inside another is cut by its own layout first, then by the outer one.
        return _per_param(_per_param(node.inner, node.layout), layout)
    if layout is not None and isinstance(node, Mapping) and node and node.keys() == {g for g, _ in layout}:
        return _views(node, layout)
    rebuilt: object = node
    if isinstance(node, tuple):
        children = [_per_param(child, layout) for child in node]
        if any(a is not b for a, b in zip(children, node, strict=True)):
            make: Callable[..., object] = type(node)  # a NamedTuple takes its fields positionally
            rebuilt = make(*children) if hasattr(node, "_fields") else tuple(children)
    elif isinstance(node, Mapping):
        changed = {k: _per_param(v, layout) for k, v in node.items() if not hasattr(v, "dtype")}
        if any(changed[k] is not node[k] for k in changed):
            rebuilt = {**node, **changed}
    return rebuilt


def unfused(state: object) -> object:
    """``state`` with every :class:`FusedState` in it replaced by its inner state, per parameter.

    Every vector a fused transformation keeps per dtype becomes read-only views, one per parameter
    under its key, so the result has the structure (and the numbers) of the state of the same
    transformation unfused. Works on an ``OptimizerState`` or any part of one; ``state`` is not
    modified and no array is copied.
    """
    return _per_param(state, None)


def find_state(state: object, kind: type[T]) -> T:
    """The outermost sub-state of type ``kind`` in ``state``, read through fusion (:func:`unfused`).

    Example: ``find_state(opt_state, ScaleByAdamState).mu["0.w"]`` is Adam's first moment of the
    parameter ``"0.w"``, whether the optimizer is fused or not.

    Raises:
        ParamsError: (a ``ValueError``) when ``state`` holds no ``kind``.
    """
    for found in find_states(unfused(state), kind):
        return found
    raise ParamsError("find_state", f"no {kind.__name__} in this optimizer state")
