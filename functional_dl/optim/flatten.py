"""Flattening: run an elementwise transformation on one contiguous vector per dtype.

A small network has few, small parameter arrays, so an optimizer step is bound by the fixed cost
of each NumPy call, not by arithmetic: Adam makes about a dozen passes *per array*. ``flatten``
gathers the updates (and params) into one vector per dtype, runs the inner transformation once on
each vector, and hands back per-key views of the result. For the 40-100-100-10 MLP of the
benchmarks (six arrays) this cuts Adam's step by more than half.

Only *elementwise* transformations may be flattened: ones whose output at an entry depends on that
entry alone (and on scalars), such as momentum, Adam, RMSprop or unmasked weight decay. Anything
that looks at keys or at one array as a whole (masks, partitions, per-layer trust ratios,
per-array clipping) must not be wrapped. The inner state then holds one entry per dtype, keyed by
the dtype's name (``"float32"``), instead of one per parameter.

Example:
    >>> import numpy as np
    >>> from functional_dl.optim import optimizer, scale_by_learning_rate
    >>> opt = optimizer(flatten(scale_by_learning_rate(0.5)))
    >>> state = opt.init({"w": np.ones((2, 2)), "b": np.zeros(2)})
    >>> state, params = opt.update(state, {"w": np.ones((2, 2)), "b": np.ones(2)})
    >>> params["w"].tolist(), params["b"].tolist()
    ([[0.5, 0.5], [0.5, 0.5]], [-0.5, -0.5])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import TypeVar

import numpy as np

from functional_dl.optim.base import GradientTransformation
from functional_dl.types import Array, Params

__all__ = ["flatten"]

S = TypeVar("S")

#: ``[(dtype name, [keys...]), ...]`` in the params' key order.
Layout = list[tuple[str, list[str]]]

# ``dtype.name`` is computed in Python on every access (a few microseconds, about the cost of a
# whole Adam pass over a small vector), so each dtype's name is looked up once and remembered.
_DTYPE_NAMES: dict[np.dtype[np.generic], str] = {}


def _dtype_name(dtype: np.dtype[np.generic]) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def _layout(params: Params) -> Layout:
    groups: dict[np.dtype[np.generic], list[str]] = {}
    for k, p in params.items():
        groups.setdefault(p.dtype, []).append(k)
    return [(_dtype_name(dtype), keys) for dtype, keys in groups.items()]


def _concat(mapping: Params, keys: list[str]) -> Array:
    return np.concatenate([mapping[k].ravel() for k in keys])


def _gather(mapping: Params, layout: Layout) -> dict[str, Array]:
    return {group: _concat(mapping, keys) for group, keys in layout}


class _LazyGather(Mapping[str, Array]):
    """The params gathered per dtype, concatenated only if the inner transformation reads them.

    Most elementwise chains (Adam, momentum, RMSprop) never look at the params; weight decay
    does. Gathering on first access saves a copy of every parameter on each step of the former.
    """

    def __init__(self, params: Params, layout: Layout) -> None:
        self._params = params
        self._keys = dict(layout)
        self._done: dict[str, Array] = {}

    def __getitem__(self, group: str) -> Array:
        vector = self._done.get(group)
        if vector is None:
            keys = self._keys[group]  # a KeyError for an unknown group, as a dict would raise
            vector = self._done[group] = _concat(self._params, keys)
        return vector

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _scatter(flat: Params, layout: Layout, like: Params) -> dict[str, Array]:
    out: dict[str, Array] = {}
    for group, keys in layout:
        vector = flat[group]
        start = 0
        for k in keys:
            shape = like[k].shape
            stop = start + like[k].size
            out[k] = vector[start:stop].reshape(shape)
            start = stop
    return out


def _flatten_init(inner: GradientTransformation[S], params: Params, /) -> S:
    return inner.init(_gather(params, _layout(params)))


def _flatten_update(
    inner: GradientTransformation[S], updates: Params, state: S, params: Params, /
) -> tuple[Params, S]:
    layout = _layout(params)
    flat_params = _LazyGather(params, layout)
    flat_updates, new_state = inner.update(_gather(updates, layout), state, flat_params)
    return _scatter(flat_updates, layout, params), new_state


def flatten(inner: GradientTransformation[S]) -> GradientTransformation[S]:
    """Run the elementwise transformation ``inner`` on one flat vector per dtype.

    Update rule: ``u = unflatten(inner(flatten(g)))``, where ``flatten`` concatenates the arrays
    of one dtype in key order and ``unflatten`` cuts the result back into views of each shape.

    The result is the same, entry for entry and bit for bit, as ``inner`` applied key by key; only
    the number of NumPy calls changes. See the module docstring for which transformations qualify.

    Args:
        inner: an elementwise transformation (or chain of them).
    """
    return GradientTransformation(partial(_flatten_init, inner), partial(_flatten_update, inner))

