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

Checks (besides the routing checks of :mod:`functional_dl.combinators._routing`):

* **one dtype rule for every fan-in**: the branches joined by ``fan_in_sum`` or ``fan_in_concat``
  are NumPy arrays of one floating dtype (an integer branch, a float32 branch beside a float64 one,
  or a list is a :class:`~functional_dl.errors.DTypeError`, never a silent upcast), and their
  shapes agree (a :class:`~functional_dl.errors.ShapeError`: no broadcasting);
* **gradients have the shapes and dtypes of what they are the gradient of**: a fan-in's ``dy`` has
  its output's shape and dtype, and each branch's gradient reaching ``fan_out``'s backward has the
  shape and dtype of the input that was copied (``None`` counts as zero), so a ``(1, 5)``
  gradient is never broadcast onto a ``(4, 5)`` input;
* ``fan_out`` and the fan-ins own no parameters, and refuse any they are given.
"""

from __future__ import annotations

from functools import partial, reduce
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_cache, check_no_params, refuse_forward_keywords
from functional_dl._flow import add_flows
from functional_dl.combinators._routing import (
    bad_context,
    check_children,
    child_contexts,
    index_of,
    join_children,
    route,
)
from functional_dl.errors import DomainError, DTypeError, LayerError, ParamsError, ShapeError, describe_shape
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import check_key, split
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
    """``value`` as a tuple of (at least one, or exactly ``n``) branches, else a clear ShapeError."""
    if not isinstance(value, tuple) or (n is not None and len(value) != n) or not value:
        count = f"{n}" if n is not None else "one or more"
        got = f"a tuple of {len(value)}" if isinstance(value, tuple) else f"{type(value).__name__}"
        raise ShapeError(
            combinator,
            f"expected a tuple of {count} {what}s, one per branch (from fan_out or parallel), got {got}",
        )
    return value


def _check_shapes(shapes: tuple[Any, ...], combinator: str) -> None:
    """Every entry of an ``init`` shape tuple is itself a shape (a tuple), not ``None`` or an int."""
    for i, s in enumerate(shapes):
        if not isinstance(s, tuple):
            raise ShapeError(
                combinator, f"branch {i}'s input shape must be a tuple such as (None, 4), got {s!r}"
            )


def _check_like(g: object, like: np.ndarray[Any, Any], combinator: str, what: str) -> None:
    """``g`` is an ndarray with ``like``'s shape and dtype (the gradient of ``like``, or a twin branch)."""
    if not isinstance(g, np.ndarray):
        raise DTypeError(combinator, f"expected {what} as a NumPy array, got {type(g).__name__}")
    if g.shape != like.shape:
        raise ShapeError(
            combinator,
            f"expected {what} of shape {describe_shape(like.shape)}, got {describe_shape(g.shape)}",
        )
    if g.dtype != like.dtype:
        raise DTypeError(combinator, f"expected {what} of dtype {like.dtype}, got {g.dtype}")


# fan_out ---------------------------------------------------------------------------------------


class FanOutCache(NamedTuple):
    """How many branches the input was copied to, and the input (a reference, for its shapes)."""

    n: int
    x: object


def _fan_out_init(n: int, key: Key, in_shape: Shape, /) -> tuple[Any, Params]:
    check_key(key)  # unused, but an int seed is refused here as by every init
    return (in_shape,) * n, EMPTY


def _fan_out_forward(
    n: int, params: Params, x: Any, ctx: Context = EVAL, /, **slips: object
) -> tuple[Any, FanOutCache]:
    if slips:
        refuse_forward_keywords("fan_out", slips)
    check_no_params(params, "fan_out")
    if type(ctx) is not Context:
        raise bad_context(ctx, "fan_out")
    if not isinstance(x, np.ndarray | tuple):
        raise DTypeError(
            "fan_out", f"expected the input as a NumPy array or a tuple of them, got {type(x).__name__}"
        )
    return (x,) * n, FanOutCache(n, x)


def _check_flow_grad(g: object, x: object, combinator: str, what: str) -> None:
    """``g`` is a gradient for the flow ``x``: ``None``, or the same nesting with matching float leaves."""
    if g is None:
        return
    if isinstance(x, tuple):
        if not isinstance(g, tuple) or len(g) != len(x):
            got = f"a tuple of {len(g)}" if isinstance(g, tuple) else type(g).__name__
            raise ShapeError(
                combinator, f"expected {what} as a tuple of {len(x)} entries (the input's), got {got}"
            )
        for i, (gi, xi) in enumerate(zip(g, x, strict=True)):
            _check_flow_grad(gi, xi, combinator, f"{what}[{i}]")
    elif isinstance(x, np.ndarray) and x.dtype.kind == "f":
        _check_like(g, x, combinator, what)
    else:
        raise DTypeError(
            combinator, f"expected None as {what} (its input has no gradient), got {type(g).__name__}"
        )


def _fan_out_backward(params: Params, cache: FanOutCache, dy: Any, /) -> tuple[Any, Params]:
    check_cache(cache, FanOutCache, "fan_out")
    check_no_params(params, "fan_out")
    grads = _check_tuple(dy, cache.n, "fan_out", "gradient")
    x = cache.x
    if type(x) is np.ndarray and all(type(g) is np.ndarray for g in grads):
        for i, g in enumerate(grads):
            if g.shape != x.shape or g.dtype != x.dtype:
                _check_like(g, x, "fan_out", f"branch {i}'s gradient")
        total = grads[0] + grads[1] if cache.n > 1 else grads[0]
        for g in grads[2:]:
            total += g  # total is our own fresh array
        return total, EMPTY
    # Tuples (a copied multi-input) add entry by entry; None is an unused branch's zero.
    for i, g in enumerate(grads):
        _check_flow_grad(g, x, "fan_out", f"branch {i}'s gradient")
    return reduce(add_flows, grads), EMPTY


def fan_out(n: int) -> Layer[FanOutCache]:
    """``x -> (x, ..., x)``, ``n`` references to the same input (not copies).

    Backward sums the branches' gradients, each of which must have the input's shape and dtype
    (``None`` counting as zero).

    Example:
        >>> import numpy as np
        >>> ys, _ = fan_out(2).forward({}, np.ones((1, 2)))
        >>> len(ys)
        2
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DomainError("fan_out", f"n must be a positive int, got {n!r}")
    return Layer(
        init_with_buffers=without_buffers(partial(_fan_out_init, n)),
        forward=partial(_fan_out_forward, n),
        backward=_fan_out_backward,
        name="fan_out",
        reads_context=False,
    )


# parallel --------------------------------------------------------------------------------------


class ParallelCache(NamedTuple):
    """The caches of the branches, in order (opaque: each belongs to its branch)."""

    caches: tuple[object, ...]


def _parallel_init(
    children: tuple[Layer[Any], ...], key: Key, in_shape: Any, /
) -> tuple[Any, Params, Buffers]:
    shapes = _check_tuple(in_shape, len(children), "parallel", "input shape")
    _check_shapes(shapes, "parallel")
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
    children: tuple[Layer[Any], ...],
    index: dict[str, int],
    params: Params,
    x: Any,
    ctx: Context = EVAL,
    /,
    **slips: object,
) -> tuple[Any, ParallelCache]:
    if slips:
        refuse_forward_keywords("parallel", slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, "parallel")
    xs = _check_tuple(x, len(children), "parallel")
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
    children: tuple[Layer[Any], ...], index: dict[str, int], params: Params, cache: ParallelCache, dy: Any, /
) -> tuple[Any, Params]:
    check_cache(cache, ParallelCache, "parallel")
    n = len(children)
    if len(cache.caches) != n:
        raise ParamsError("parallel", f"cache has {len(cache.caches)} entries, this network has {n} branches")
    dys = _check_tuple(dy, n, "parallel", "gradient")
    child_params = route(params, index, "parallel")
    dxs: list[Any] = []
    child_grads: list[Params] = []
    for i, child in enumerate(children):
        try:
            dx, g = child.backward(child_params[i], cache.caches[i], dys[i])
        except LayerError as err:
            raise err.under(str(i)) from None
        dxs.append(dx)
        child_grads.append(g)
    return tuple(dxs), join_children(child_grads, list(index))


def _parallel_buffers_of(children: tuple[Layer[Any], ...], cache: ParallelCache, /) -> Buffers:
    check_cache(cache, ParallelCache, "parallel")
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
        raise DomainError("parallel", "needs at least one layer")
    children = check_children(layers, "parallel")
    index = index_of([str(i) for i in range(len(children))])
    return Layer(
        init_with_buffers=partial(_parallel_init, children),
        forward=partial(_parallel_forward, children, index),
        backward=partial(_parallel_backward, children, index),
        buffers_of=partial(_parallel_buffers_of, children),
        name="parallel",
        reads_context=any(child.reads_context for child in children),
        children=tuple(Child(str(i), child) for i, child in enumerate(children)),
        rebuild=_parallel_rebuild,
    )


# the fan-ins -----------------------------------------------------------------------------------


def _check_branches(xs: tuple[Any, ...], combinator: str) -> np.dtype[Any]:
    """The fan-ins' dtype rule: every branch an ndarray of branch 0's floating dtype; that dtype."""
    first = xs[0]
    if not isinstance(first, np.ndarray):
        raise DTypeError(combinator, f"branch 0 is a {type(first).__name__}, not a NumPy array")
    dtype: np.dtype[Any] = first.dtype
    if dtype.kind != "f":
        raise DTypeError(combinator, f"expected floating-point branches, branch 0 has dtype {dtype}")
    for i, a in enumerate(xs[1:], start=1):
        if not isinstance(a, np.ndarray):
            raise DTypeError(combinator, f"branch {i} is a {type(a).__name__}, not a NumPy array")
        if a.dtype != dtype:
            raise DTypeError(
                combinator,
                f"branch {i} has dtype {a.dtype}, branch 0 has {dtype}: the branches must share one dtype",
            )
    return dtype


def _check_dy(dy: object, shape: tuple[int, ...], dtype: np.dtype[Any], combinator: str) -> None:
    """``dy`` is an ndarray of the forward output's shape and dtype."""
    if type(dy) is not np.ndarray or dy.shape != shape or dy.dtype != dtype:
        if not isinstance(dy, np.ndarray):
            raise DTypeError(combinator, f"expected dy as a NumPy array, got {type(dy).__name__}")
        if dy.shape != shape:
            raise ShapeError(
                combinator, f"expected dy of shape {describe_shape(shape)}, got {describe_shape(dy.shape)}"
            )
        if dy.dtype != dtype:
            raise DTypeError(combinator, f"expected dy of dtype {dtype} (the output's), got {dy.dtype}")


class FanInSumCache(NamedTuple):
    """How many branches were summed, and the output's shape and dtype (what ``dy`` must have)."""

    n: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def _same_shapes(shapes: tuple[Any, ...], combinator: str) -> None:
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        if s != first:
            raise ShapeError(
                combinator,
                f"branch {i} has shape {describe_shape(s)}, expected {describe_shape(first)} (branch 0's)",
            )


def _fan_in_sum_init(key: Key, in_shape: Any, /) -> tuple[Any, Params]:
    check_key(key)  # unused, but an int seed is refused here as by every init
    shapes = _check_tuple(in_shape, None, "fan_in_sum", "input shape")
    _check_shapes(shapes, "fan_in_sum")
    _same_shapes(shapes, "fan_in_sum")
    return shapes[0], EMPTY


def _fan_in_sum_forward(
    params: Params, x: Any, ctx: Context = EVAL, /, **slips: object
) -> tuple[Any, FanInSumCache]:
    if slips:
        refuse_forward_keywords("fan_in_sum", slips)
    check_no_params(params, "fan_in_sum")
    if type(ctx) is not Context:
        raise bad_context(ctx, "fan_in_sum")
    xs = _check_tuple(x, None, "fan_in_sum")
    dtype = _check_branches(xs, "fan_in_sum")
    _same_shapes(tuple(a.shape for a in xs), "fan_in_sum")
    total = xs[0] + xs[1] if len(xs) > 1 else xs[0]
    for a in xs[2:]:
        total += a  # total is our own fresh array
    return total, FanInSumCache(len(xs), total.shape, dtype)


def _fan_in_sum_backward(params: Params, cache: FanInSumCache, dy: Any, /) -> tuple[Any, Params]:
    check_cache(cache, FanInSumCache, "fan_in_sum")
    check_no_params(params, "fan_in_sum")
    _check_dy(dy, cache.shape, cache.dtype, "fan_in_sum")
    return (dy,) * cache.n, EMPTY


def fan_in_sum() -> Layer[FanInSumCache]:
    """``(x_1, ..., x_n) -> x_1 + ... + x_n``; the branches must have one shape and one float dtype."""
    return Layer(
        init_with_buffers=without_buffers(_fan_in_sum_init),
        forward=_fan_in_sum_forward,
        backward=_fan_in_sum_backward,
        name="fan_in_sum",
        reads_context=False,
    )


class FanInConcatCache(NamedTuple):
    """Where to split the gradient (the sizes along the non-negative axis), and ``dy``'s shape and dtype."""

    sizes: tuple[int, ...]
    axis: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def _concat_axis(axis: int, ndim: int) -> int:
    resolved = axis + ndim if axis < 0 else axis
    if not 0 < resolved < ndim:
        raise ShapeError(
            "fan_in_concat", f"axis {axis} is not a non-batch axis of inputs with {ndim} dimensions"
        )
    return resolved


def _fan_in_concat_init(axis: int, key: Key, in_shape: Any, /) -> tuple[Any, Params]:
    check_key(key)  # unused, but an int seed is refused here as by every init
    shapes = _check_tuple(in_shape, None, "fan_in_concat", "input shape")
    _check_shapes(shapes, "fan_in_concat")
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ShapeError(
            "fan_in_concat", f"branches have different ranks: {[describe_shape(s) for s in shapes]}"
        )
    ax = _concat_axis(axis, len(shapes[0]))
    rest = [(*s[:ax], *s[ax + 1 :]) for s in shapes]
    _same_shapes(tuple(rest), "fan_in_concat")
    sizes = [s[ax] for s in shapes]
    joined = None if any(d is None for d in sizes) else sum(sizes)  # an unknown size stays unknown
    return (*shapes[0][:ax], joined, *shapes[0][ax + 1 :]), EMPTY


def _fan_in_concat_forward(
    axis: int, params: Params, x: Any, ctx: Context = EVAL, /, **slips: object
) -> tuple[Any, FanInConcatCache]:
    if slips:
        refuse_forward_keywords("fan_in_concat", slips)
    check_no_params(params, "fan_in_concat")
    if type(ctx) is not Context:
        raise bad_context(ctx, "fan_in_concat")
    xs = _check_tuple(x, None, "fan_in_concat")
    dtype = _check_branches(xs, "fan_in_concat")
    if any(a.ndim != xs[0].ndim for a in xs):
        raise ShapeError(
            "fan_in_concat", f"branches have different ranks: {[describe_shape(a.shape) for a in xs]}"
        )
    ax = _concat_axis(axis, xs[0].ndim)
    rest = tuple((*a.shape[:ax], *a.shape[ax + 1 :]) for a in xs)
    _same_shapes(rest, "fan_in_concat")
    y = np.concatenate(xs, axis=ax)
    return y, FanInConcatCache(tuple(a.shape[ax] for a in xs), ax, y.shape, dtype)


def _fan_in_concat_backward(params: Params, cache: FanInConcatCache, dy: Any, /) -> tuple[Any, Params]:
    check_cache(cache, FanInConcatCache, "fan_in_concat")
    check_no_params(params, "fan_in_concat")
    _check_dy(dy, cache.shape, cache.dtype, "fan_in_concat")
    cuts = np.cumsum(cache.sizes[:-1]).tolist()
    return tuple(np.split(dy, cuts, axis=cache.axis)), EMPTY


def fan_in_concat(axis: int = -1) -> Layer[FanInConcatCache]:
    """``(x_1, ..., x_n) -> concatenate(x_i, axis)``; shapes must agree except along ``axis``.

    The branches must share one floating dtype, as for :func:`fan_in_sum`.

    Args:
        axis: the axis to join along, counted with the batch axis (``1`` is the channel axis of
            ``(N, C, H, W)`` images, ``-1`` the feature axis); the batch axis 0 is refused.
    """
    if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
        raise DomainError("fan_in_concat", f"axis must be a non-batch axis (an int, not 0), got {axis!r}")
    return Layer(
        init_with_buffers=without_buffers(partial(_fan_in_concat_init, axis)),
        forward=partial(_fan_in_concat_forward, axis),
        backward=_fan_in_concat_backward,
        name="fan_in_concat",
        reads_context=False,
    )
