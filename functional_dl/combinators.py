"""Combinators: networks built from layers. The one place where cache types are erased.

A layer is generic in its cache type and invariant in it, so a combinator holding layers of
different kinds takes them as ``Layer[Any]``; what it returns is concrete (``Layer[SerialCache]``),
so no ``Any`` reaches the user.

Parameter keys are the child's keys prefixed with the child's index: the params of
``serial(dense(4), relu(), dense(1))`` are ``0.w, 0.b, 2.w, 2.b`` (as in a PyTorch
``nn.Sequential`` ``state_dict``). ``init`` splits its key into one key per child, so a child's
parameters depend only on its position and the key, not on what else is in the network.

Errors raised inside a child are re-raised with the child's index prefixed to the layer path, so a
failure deep in a network reads ``"2.dense: expected input of shape (batch, 7), got (16, 5)"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

from functional_dl.errors import LayerError, ParamsError
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import split
from functional_dl.types import EMPTY, EVAL, Array, Context, Key, Layer, Params, Shape, State

__all__ = ["SerialCache", "serial", "split_by_child"]


class SerialCache(NamedTuple):
    """The caches of the children, in order (opaque: each belongs to its child)."""

    caches: tuple[object, ...]


def split_by_child(mapping: Params, n: int, combinator: str) -> list[dict[str, Array]]:
    """Route a flat mapping to ``n`` children by the leading index of each key, stripping it.

    One pass over the keys; raises :class:`ParamsError` for a key that names no child.
    """
    parts: list[dict[str, Array]] = [{} for _ in range(n)]
    for name, value in mapping.items():
        head, _, tail = name.partition(".")
        if not (head.isdigit() and tail and int(head) < n):
            raise ParamsError(combinator, f"unexpected key {name!r}: this network has children 0..{n - 1}")
        parts[int(head)][tail] = value
    return parts


def _child_contexts(ctx: Context, n: int, combinator: str) -> Sequence[Context]:
    if ctx.key is None and not ctx.state:
        return (ctx,) * n  # the common case: nothing to route, no allocation per child
    keys: Sequence[Key | None] = split(ctx.key, n) if ctx.key is not None else (None,) * n
    states: Sequence[State] = split_by_child(ctx.state, n, combinator) if ctx.state else (EMPTY,) * n
    return [Context(ctx.train, k, s) for k, s in zip(keys, states, strict=True)]


def _serial_init(
    children: tuple[Layer[Any], ...], key: Key, in_shape: Shape, /
) -> tuple[Shape, Params, State]:
    shape = in_shape
    params: list[Params] = []
    states: list[State] = []
    for i, (child, child_key) in enumerate(zip(children, split(key, len(children)), strict=True)):
        try:
            shape, p, s = child.init_with_state(child_key, shape)
        except LayerError as err:
            raise err.under(str(i)) from None
        params.append(prefix(p, str(i)))
        states.append(prefix(s, str(i)))
    return shape, FrozenParams(merge_params(*params)), FrozenParams(merge_params(*states))


def _serial_forward(
    children: tuple[Layer[Any], ...], params: Params, x: Array, ctx: Context = EVAL, /
) -> tuple[Array, SerialCache]:
    n = len(children)
    child_params = split_by_child(params, n, "serial")
    child_ctx = _child_contexts(ctx, n, "serial")
    caches: list[object] = []
    # A plain loop rather than a fold: this is the hot path and each child's cache must be kept.
    for i, child in enumerate(children):
        try:
            x, cache = child.forward(child_params[i], x, child_ctx[i])
        except LayerError as err:
            raise err.under(str(i)) from None
        caches.append(cache)
    return x, SerialCache(tuple(caches))


def _serial_backward(
    children: tuple[Layer[Any], ...], params: Params, cache: SerialCache, dy: Array, /
) -> tuple[Array, Params]:
    n = len(children)
    if len(cache.caches) != n:
        raise ParamsError("serial", f"cache has {len(cache.caches)} entries, this network has {n} layers")
    child_params = split_by_child(params, n, "serial")
    child_grads: list[Params] = [EMPTY] * n
    for i in range(n - 1, -1, -1):
        try:
            dy, child_grads[i] = children[i].backward(child_params[i], cache.caches[i], dy)
        except LayerError as err:
            raise err.under(str(i)) from None
    grads = {f"{i}.{name}": g for i, part in enumerate(child_grads) for name, g in part.items()}
    return dy, grads


def _serial_state_of(children: tuple[Layer[Any], ...], cache: SerialCache, /) -> State:
    states = [
        prefix(child.state_of(c), str(i))
        for i, (child, c) in enumerate(zip(children, cache.caches, strict=True))
    ]
    return merge_params(*states) if any(states) else EMPTY


def serial(*layers: Layer[Any]) -> Layer[SerialCache]:
    """Layers applied one after another: ``y = f_n(... f_2(f_1(x)))``.

    Backward runs the children's backward passes in reverse; ``grads`` gathers every child's
    gradients under its index prefix.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random
        >>> net = serial(L.dense(4), L.relu(), L.dense(1))
        >>> out_shape, params = net.init(random.key(0), (None, 3))
        >>> out_shape, sorted(params)
        ((None, 1), ['0.b', '0.w', '2.b', '2.w'])
        >>> y, cache = net.forward(params, np.ones((5, 3), np.float32))
        >>> dx, grads = net.backward(params, cache, np.ones_like(y))
        >>> dx.shape, sorted(grads) == sorted(params)
        ((5, 3), True)
    """
    if not layers:
        raise ValueError("serial: needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"serial: argument {i} is not a Layer (did you write L.relu instead of L.relu()?)"
            )
    children = tuple(layers)
    return Layer(
        init_with_state=partial(_serial_init, children),
        forward=partial(_serial_forward, children),
        backward=partial(_serial_backward, children),
        state_of=partial(_serial_state_of, children),
        name="serial",
    )
