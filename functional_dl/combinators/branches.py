"""Branching networks: ``fan_out``, ``parallel``, ``fan_in_sum`` and ``fan_in_concat``.

Between a fan-out and a fan-in the value flowing through a ``serial`` is a *tuple* of arrays, one
per branch (as in stax)::

    block = serial(fan_out(2), parallel(dense(8), serial(dense(8), relu())), fan_in_concat(-1))

* ``fan_out(n)``: ``x -> (x, ..., x)``; backward sums the ``n`` incoming gradients (entry by
  entry when ``x`` is itself a tuple, a ``None`` gradient counting as zero).
* ``parallel(f_1, ..., f_n)``: ``(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n))``, one input per
  branch; keys ``"0.w"``, ``"1.w"``, ... as in ``serial``; ``ctx.key`` split one key per branch.
* ``fan_in_sum()``: ``(x_1, ..., x_n) -> x_1 + ... + x_n`` (same shapes); backward copies ``dy``.
* ``fan_in_concat(axis)``: ``np.concatenate`` along ``axis`` (not the batch axis); backward splits
  ``dy`` back into the branches' sizes.

In ``init`` the shapes are tuples of shapes in the same way. These layers are typed as taking and
returning arrays (the layer contract) but take and return tuples; use them inside ``serial``.
"""

from __future__ import annotations

from functools import partial, reduce
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_cache
from functional_dl._flow import add_flows
from functional_dl.combinators._routing import child_contexts, index_of, join_children, route
from functional_dl.combinators.serial import check_children
from functional_dl.errors import DTypeError, LayerError, ShapeError, describe_shape
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import split
from functional_dl.types import (
    EMPTY,
    EVAL,
    Buffers,
    Child,
    Context,
    Key,
    Layer,
    Params,
    Shape,
    without_buffers,
)

__all__ = [
    "FanInConcatCache",
    "FanInSumCache",
    "FanOutCache",
    "ParallelCache",
    "fan_in_concat",
    "fan_in_sum",
    "fan_out",
    "parallel",
]


def _check_tuple(value: object, n: int | None, combinator: str, what: str = "input") -> tuple[Any, ...]:
    """``value`` as a tuple of (at least two, or exactly ``n``) branches, else a clear ShapeError."""
    if not isinstance(value, tuple) or (n is not None and len(value) != n) or not value:
        count = f"{n}" if n is not None else "one or more"
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else f"{type(value).__name__}"
        raise ShapeError(
            combinator,
            f"expected a tuple of {count} {what}s, one per branch (from fan_out or parallel), got {got}",
        )
    return value


# fan_out ---------------------------------------------------------------------------------------


class FanOutCache(NamedTuple):
    """How many branches the input was copied to."""

    n: int


def _fan_out_init(n: int, key: Key, in_shape: Shape, /) -> tuple[Any, Params]:
    return (in_shape,) * n, EMPTY


def _fan_out_forward(n: int, params: Params, x: Any, ctx: Context = EVAL, /) -> tuple[Any, FanOutCache]:
    return (x,) * n, FanOutCache(n)


def _fan_out_backward(params: Params, cache: FanOutCache, dy: Any, /) -> tuple[Any, Params]:
    grads = _check_tuple(dy, cache.n, "fan_out", "gradient")
    if not all(isinstance(g, np.ndarray) for g in grads):
        # Tuples (a copied multi-input) add entry by entry; None is an unused branch's zero.
        return reduce(add_flows, grads), EMPTY
    total = grads[0] + grads[1] if cache.n > 1 else grads[0]
    for g in grads[2:]:
        total += g  # total is our own fresh array
    return total, EMPTY


def fan_out(n: int) -> Layer[FanOutCache]:
    """``x -> (x, ..., x)``, ``n`` references to the same input (not copies).

    Example:
        >>> import numpy as np
        >>> ys, _ = fan_out(2).forward({}, np.ones((1, 2)))
        >>> len(ys)
        2
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"fan_out: n must be a positive int, got {n!r}")
    return Layer(
        init_with_buffers=without_buffers(partial(_fan_out_init, n)),
        forward=partial(_fan_out_forward, n),
        backward=_fan_out_backward,
        name="fan_out",
    )


# parallel --------------------------------------------------------------------------------------


class ParallelCache(NamedTuple):
    """The caches of the branches, in order (opaque: each belongs to its branch)."""

    caches: tuple[object, ...]


def _parallel_init(
    children: tuple[Layer[Any], ...], key: Key, in_shape: Any, /
) -> tuple[Any, Params, Buffers]:
    shapes = _check_tuple(in_shape, len(children), "parallel", "input shape")
    outs: list[Shape] = []
    params: list[Params] = []
    states: list[Buffers] = []
    for i, (child, child_key, shape) in enumerate(
        zip(children, split(key, len(children)), shapes, strict=True)
    ):
        try:
            out, p, s = child.init_with_buffers(child_key, shape)
        except LayerError as err:
            raise err.under(str(i)) from None
        outs.append(out)
        params.append(prefix(p, str(i)))
        states.append(prefix(s, str(i)))
    return tuple(outs), FrozenParams(merge_params(*params)), FrozenParams(merge_params(*states))


def _parallel_forward(
    children: tuple[Layer[Any], ...], params: Params, x: Any, ctx: Context = EVAL, /
) -> tuple[Any, ParallelCache]:
    xs = _check_tuple(x, len(children), "parallel")
    index = index_of([str(i) for i in range(len(children))])
    child_params = route(params, index, "parallel")
    child_ctx = child_contexts(ctx, index, "parallel")
    ys: list[Any] = []
    caches: list[object] = []
    for i, child in enumerate(children):
        try:
            y, cache = child.forward(child_params[i], xs[i], child_ctx[i])
        except LayerError as err:
            raise err.under(str(i)) from None
        ys.append(y)
        caches.append(cache)
    return tuple(ys), ParallelCache(tuple(caches))


def _parallel_backward(
    children: tuple[Layer[Any], ...], params: Params, cache: ParallelCache, dy: Any, /
) -> tuple[Any, Params]:
    n = len(children)
    check_cache(cache, ParallelCache, "parallel")
    dys = _check_tuple(dy, n, "parallel", "gradient")
    segments = [str(i) for i in range(n)]
    child_params = route(params, index_of(segments), "parallel")
    dxs: list[Any] = []
    child_grads: list[Params] = []
    for i, child in enumerate(children):
        try:
            dx, g = child.backward(child_params[i], cache.caches[i], dys[i])
        except LayerError as err:
            raise err.under(str(i)) from None
        dxs.append(dx)
        child_grads.append(g)
    return tuple(dxs), join_children(child_grads, segments)


def _parallel_buffers_of(children: tuple[Layer[Any], ...], cache: ParallelCache, /) -> Buffers:
    states = [child.buffers_of(c) for child, c in zip(children, cache.caches, strict=True)]
    return join_children(states, [str(i) for i in range(len(children))]) if any(states) else EMPTY


def _parallel_rebuild(layers: tuple[Layer[Any], ...], /) -> Layer[ParallelCache]:
    return parallel(*layers)


def parallel(*layers: Layer[Any]) -> Layer[ParallelCache]:
    """Branch ``i`` applied to input ``i``: ``(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n))``.

    Keys are ``"<i>.<child key>"``; ``ctx.key`` is split one key per branch and ``ctx.buffers``
    routed by index, exactly as in ``serial``.
    """
    if not layers:
        raise ValueError("parallel: needs at least one layer")
    children = check_children(layers, "parallel")
    return Layer(
        init_with_buffers=partial(_parallel_init, children),
        forward=partial(_parallel_forward, children),
        backward=partial(_parallel_backward, children),
        buffers_of=partial(_parallel_buffers_of, children),
        name="parallel",
        children=tuple(Child(str(i), child) for i, child in enumerate(children)),
        rebuild=_parallel_rebuild,
    )


# fan_in_sum ------------------------------------------------------------------------------------


class FanInSumCache(NamedTuple):
    """How many branches were summed."""

    n: int


def _same_shapes(shapes: tuple[Any, ...], combinator: str) -> None:
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        if s != first:
            raise ShapeError(
                combinator,
                f"branch {i} has shape {describe_shape(s)}, expected {describe_shape(first)} (branch 0's)",
            )


def _fan_in_sum_init(key: Key, in_shape: Any, /) -> tuple[Any, Params]:
    shapes = _check_tuple(in_shape, None, "fan_in_sum", "input shape")
    _same_shapes(shapes, "fan_in_sum")
    return shapes[0], EMPTY


def _fan_in_sum_forward(params: Params, x: Any, ctx: Context = EVAL, /) -> tuple[Any, FanInSumCache]:
    xs = _check_tuple(x, None, "fan_in_sum")
    _same_shapes(tuple(a.shape for a in xs), "fan_in_sum")
    for i, a in enumerate(xs[1:], start=1):
        if a.dtype != xs[0].dtype:
            raise DTypeError("fan_in_sum", f"branch {i} has dtype {a.dtype}, branch 0 has {xs[0].dtype}")
    total = xs[0] + xs[1] if len(xs) > 1 else xs[0]
    for a in xs[2:]:
        total += a  # total is our own fresh array
    return total, FanInSumCache(len(xs))


def _fan_in_sum_backward(params: Params, cache: FanInSumCache, dy: Any, /) -> tuple[Any, Params]:
    return (dy,) * cache.n, EMPTY


def fan_in_sum() -> Layer[FanInSumCache]:
    """``(x_1, ..., x_n) -> x_1 + ... + x_n``; the branches must have the same shape and dtype."""
    return Layer(
        init_with_buffers=without_buffers(_fan_in_sum_init),
        forward=_fan_in_sum_forward,
        backward=_fan_in_sum_backward,
        name="fan_in_sum",
    )


# fan_in_concat ---------------------------------------------------------------------------------


class FanInConcatCache(NamedTuple):
    """Where to split the gradient: the branches' sizes along the (non-negative) axis."""

    sizes: tuple[int, ...]
    axis: int


def _concat_axis(axis: int, ndim: int) -> int:
    resolved = axis + ndim if axis < 0 else axis
    if not 0 < resolved < ndim:
        raise ShapeError(
            "fan_in_concat", f"axis {axis} is not a non-batch axis of inputs with {ndim} dimensions"
        )
    return resolved


def _fan_in_concat_init(axis: int, key: Key, in_shape: Any, /) -> tuple[Any, Params]:
    shapes = _check_tuple(in_shape, None, "fan_in_concat", "input shape")
    ax = _concat_axis(axis, len(shapes[0]))
    rest = [(*s[:ax], *s[ax + 1 :]) for s in shapes]
    _same_shapes(tuple(rest), "fan_in_concat")
    return (*shapes[0][:ax], sum(s[ax] for s in shapes), *shapes[0][ax + 1 :]), EMPTY


def _fan_in_concat_forward(
    axis: int, params: Params, x: Any, ctx: Context = EVAL, /
) -> tuple[Any, FanInConcatCache]:
    xs = _check_tuple(x, None, "fan_in_concat")
    ax = _concat_axis(axis, xs[0].ndim)
    rest = tuple((*a.shape[:ax], *a.shape[ax + 1 :]) for a in xs)
    if any(a.ndim != xs[0].ndim for a in xs):
        raise ShapeError(
            "fan_in_concat", f"branches have different ranks: {[describe_shape(a.shape) for a in xs]}"
        )
    _same_shapes(rest, "fan_in_concat")
    return np.concatenate(xs, axis=ax), FanInConcatCache(tuple(a.shape[ax] for a in xs), ax)


def _fan_in_concat_backward(params: Params, cache: FanInConcatCache, dy: Any, /) -> tuple[Any, Params]:
    if dy.ndim <= cache.axis or dy.shape[cache.axis] != sum(cache.sizes):
        raise ShapeError(
            "fan_in_concat",
            f"expected dy with {sum(cache.sizes)} entries on axis {cache.axis}, "
            f"got {describe_shape(dy.shape)}",
        )
    cuts = np.cumsum(cache.sizes[:-1]).tolist()
    return tuple(np.split(dy, cuts, axis=cache.axis)), EMPTY


def fan_in_concat(axis: int = -1) -> Layer[FanInConcatCache]:
    """``(x_1, ..., x_n) -> concatenate(x_i, axis)``; shapes must agree except along ``axis``.

    Args:
        axis: the axis to join along, counted with the batch axis (``1`` is the channel axis of
            ``(N, C, H, W)`` images, ``-1`` the feature axis); the batch axis 0 is refused.
    """
    if not isinstance(axis, int) or axis == 0:
        raise ValueError(f"fan_in_concat: axis must be a non-batch axis (not 0), got {axis!r}")
    return Layer(
        init_with_buffers=without_buffers(partial(_fan_in_concat_init, axis)),
        forward=partial(_fan_in_concat_forward, axis),
        backward=_fan_in_concat_backward,
        name="fan_in_concat",
    )
