"""``serial``: layers applied one after another, the backbone of every network.

Parameter keys are each child's keys under its segment: the child's position (``"0.w"``, as in a
PyTorch ``nn.Sequential`` ``state_dict``) or, when the children are given by keyword, its name
(``serial(encoder=..., head=...)`` gives ``"encoder.0.w"``, ``"head.w"``, like
``nn.Sequential(OrderedDict(...))``). ``init`` gives child ``i`` the key ``split(key, n)[i]``,
which depends on ``i`` alone, so a child's parameters do not change when layers are added after it.

Errors raised inside a child are re-raised with its segment prefixed to the layer path, so a
failure deep in a network reads ``"encoder.2.dense: expected input of shape (batch, 7), got (16, 5)"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

from functional_dl.combinators._routing import child_contexts, index_of, join_children, route
from functional_dl.errors import LayerError, ParamsError
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import split
from functional_dl.types import EMPTY, EVAL, Buffers, Child, Context, Key, Layer, Params, Shape

__all__ = ["SerialCache", "check_children", "serial"]


class SerialCache(NamedTuple):
    """The caches of the children, in order (opaque: each belongs to its child)."""

    caches: tuple[object, ...]


def _serial_init(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], key: Key, in_shape: Shape, /
) -> tuple[Shape, Params, Buffers]:
    shape = in_shape
    params: list[Params] = []
    states: list[Buffers] = []
    for seg, child, child_key in zip(index, children, split(key, len(children)), strict=True):
        try:
            shape, p, s = child.init_with_buffers(child_key, shape)
        except LayerError as err:
            raise err.under(seg) from None
        params.append(prefix(p, seg))
        states.append(prefix(s, seg))
    return shape, FrozenParams(merge_params(*params)), FrozenParams(merge_params(*states))


def _serial_forward(
    children: tuple[Layer[Any], ...],
    index: Mapping[str, int],
    params: Params,
    x: Any,
    ctx: Context = EVAL,
    /,
    *,
    reads_context: bool,
) -> tuple[Any, SerialCache]:
    child_params = route(params, index, "serial")
    # When no child looks at its context, deriving n keys and contexts nobody reads is skipped. A
    # child's key is split(key, n)[i] either way, so which children read theirs changes nothing.
    unread = not reads_context and not ctx.buffers
    child_ctx = (ctx,) * len(children) if unread else child_contexts(ctx, index, "serial")
    caches: list[object] = []
    # A plain loop rather than a fold: this is the hot path and each child's cache must be kept.
    for seg, i in index.items():
        try:
            x, cache = children[i].forward(child_params[i], x, child_ctx[i])
        except LayerError as err:
            raise err.under(seg) from None
        caches.append(cache)
    return x, SerialCache(tuple(caches))


def _backpropagate(
    children: tuple[Layer[Any], ...],
    index: Mapping[str, int],
    params: Params,
    cache: SerialCache,
    dy: Any,
    *,
    input_grad: bool,
) -> tuple[Any, Params]:
    """The children's backward passes in reverse; without ``input_grad`` the first skips its ``dx``."""
    n = len(children)
    if len(cache.caches) != n:
        raise ParamsError("serial", f"cache has {len(cache.caches)} entries, this network has {n} layers")
    child_params = route(params, index, "serial")
    child_grads: list[Params] = [EMPTY] * n
    segments = list(index)
    last = 0 if input_grad else 1
    for i in range(n - 1, last - 1, -1):
        try:
            dy, child_grads[i] = children[i].backward(child_params[i], cache.caches[i], dy)
        except LayerError as err:
            raise err.under(segments[i]) from None
    if not input_grad:
        try:
            child_grads[0] = children[0].param_grads(child_params[0], cache.caches[0], dy)
        except LayerError as err:
            raise err.under(segments[0]) from None
        dy = None
    return dy, join_children(child_grads, segments)


def _serial_backward(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache, dy: Any, /
) -> tuple[Any, Params]:
    return _backpropagate(children, index, params, cache, dy, input_grad=True)


def _serial_backward_params(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache, dy: Any, /
) -> Params:
    return _backpropagate(children, index, params, cache, dy, input_grad=False)[1]


def _serial_buffers_of(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], cache: SerialCache, /
) -> Buffers:
    states = [child.buffers_of(c) for child, c in zip(children, cache.caches, strict=True)]
    return join_children(states, list(index)) if any(states) else EMPTY


def _serial_rebuild(names: tuple[str, ...], layers: tuple[Layer[Any], ...], /) -> Layer[SerialCache]:
    """``serial`` again over ``layers``: by keyword when it was built with ``names``, else positionally."""
    return serial(**dict(zip(names, layers, strict=True))) if names else serial(*layers)


def check_children(layers: tuple[object, ...], combinator: str) -> tuple[Layer[Any], ...]:
    """The layers as a tuple, after checking each is a :class:`Layer` (a classic slip: ``L.relu``)."""
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{combinator}: argument {i} is not a Layer (did you write L.relu instead of L.relu()?)"
            )
    return tuple(layers)  # type: ignore[arg-type]  # checked just above


def _check_segment(name: str, combinator: str) -> None:
    if not name or "." in name:
        raise ValueError(f"{combinator}: a child's name must be non-empty and contain no '.', got {name!r}")


def serial(*layers: Layer[Any], **named_layers: Layer[Any]) -> Layer[SerialCache]:
    """Layers applied one after another: ``y = f_n(... f_2(f_1(x)))``.

    Give the layers positionally (keys ``"0.w"``, ``"1.b"``, ...) or all by keyword (keys
    ``"encoder.0.w"``, ...), not both. ``ctx.key`` is split one key per child and ``ctx.buffers`` is
    routed by segment, so dropout and batch norm anywhere inside get their own key and state.
    Backward runs the children's backward passes in reverse; ``grads`` gathers every child's
    gradients under its segment.

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
        >>> sorted(serial(body=L.dense(2), head=L.dense(1)).init(random.key(0), (None, 3))[1])
        ['body.b', 'body.w', 'head.b', 'head.w']
    """
    if layers and named_layers:
        raise TypeError("serial: give the layers all positionally or all by name, not both")
    if not layers and not named_layers:
        raise ValueError("serial: needs at least one layer")
    for name in named_layers:
        _check_segment(name, "serial")
    children = check_children(layers or tuple(named_layers.values()), "serial")
    index = index_of(list(named_layers) if named_layers else [str(i) for i in range(len(children))])
    reads_context = any(child.reads_context for child in children)
    return Layer(
        init_with_buffers=partial(_serial_init, children, index),
        forward=partial(_serial_forward, children, index, reads_context=reads_context),
        backward=partial(_serial_backward, children, index),
        buffers_of=partial(_serial_buffers_of, children, index),
        name="serial",
        reads_context=reads_context,
        backward_params=partial(_serial_backward_params, children, index),
        children=tuple(Child(seg, child) for seg, child in zip(index, children, strict=True)),
        rebuild=partial(_serial_rebuild, tuple(named_layers)),
    )
