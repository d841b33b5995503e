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

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple

from functional_dl._checks import check_cache, refuse_forward_keywords
from functional_dl._fn import accumulate
from functional_dl.combinators._routing import (
    bad_context,
    check_children,
    child_contexts,
    index_of,
    join_children,
    route,
)
from functional_dl.errors import ArgumentError, DomainError, LayerError, ParamsError
from functional_dl.params import FrozenParams, merge_params, prefix
from functional_dl.random import split
from functional_dl.types import EMPTY, EVAL, Buffers, Child, Context, Key, Layer, Params, Shape

__all__ = ["SerialCache", "serial"]


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


# The textbook formulas: folds over the children ------------------------------------------------
#
# A link pairs a child with what it needs for one call: (segment, child, its params, its context or
# cache). The forward pass is a scan of the children's forwards, each applied to the previous output;
# the backward pass a scan of their backwards in reverse, each applied to the previous input gradient.

_ForwardLink = tuple[str, Layer[Any], Params, Context]
_BackwardLink = tuple[str, Layer[Any], Params, object]


def _apply_forward(carry: tuple[Any, object], link: _ForwardLink) -> tuple[Any, object]:
    """One step of the forward fold: ``(x, _) -> child.forward(params, x, ctx)``."""
    segment, child, params, ctx = link
    try:
        return child.forward(params, carry[0], ctx)
    except LayerError as err:
        raise err.under(segment) from None


def _apply_backward(carry: tuple[Any, Params], link: _BackwardLink) -> tuple[Any, Params]:
    """One step of the backward fold: ``(dy, _) -> child.backward(params, cache, dy)``."""
    segment, child, params, cache = link
    try:
        return child.backward(params, cache, carry[0])
    except LayerError as err:
        raise err.under(segment) from None


def _fold_forward(links: Iterable[_ForwardLink], x: Any) -> tuple[Any, SerialCache]:
    """``y = f_n(... f_2(f_1(x)))``, keeping every child's cache."""
    start: tuple[Any, object] = (x, None)
    steps = tuple(accumulate(_apply_forward, links, start))
    return steps[-1][0], SerialCache(tuple(map(itemgetter(1), steps[1:])))


def _fold_backward(links: list[_BackwardLink], dy: Any) -> tuple[Any, list[Params]]:
    """``dx = J_1^T (... J_n^T dy)`` from the last child to the first; the grads in child order."""
    steps = tuple(accumulate(_apply_backward, reversed(links), (dy, EMPTY)))
    return steps[-1][0], [grads for _, grads in reversed(steps[1:])]


def _forward_links(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, child_ctx: Sequence[Context]
) -> Iterable[_ForwardLink]:
    return zip(index, children, route(params, index, "serial"), child_ctx, strict=True)


def forward_plain(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, x: Any, ctx: Context = EVAL
) -> tuple[Any, SerialCache]:
    """The plain forward: every child gets its own context (its key, its buffers), then the fold."""
    if type(ctx) is not Context:
        raise bad_context(ctx, "serial")
    child_ctx = child_contexts(ctx, index, "serial")
    return _fold_forward(_forward_links(children, index, params, child_ctx), x)


def backward_plain(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache, dy: Any
) -> tuple[Any, Params]:
    """The plain backward: every child's backward in reverse, the grads gathered under their segments."""
    links = _backward_links(children, index, params, cache)
    dx, child_grads = _fold_backward(links, dy)
    return dx, join_children(child_grads, list(index))


def _backward_links(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache
) -> list[_BackwardLink]:
    check_cache(cache, SerialCache, "serial")
    n = len(children)
    if len(cache.caches) != n:
        raise ParamsError("serial", f"cache has {len(cache.caches)} entries, this network has {n} layers")
    return list(zip(index, children, route(params, index, "serial"), cache.caches, strict=True))


# The fast paths, which give the same numbers bit for bit ---------------------------------------


def _contexts_unless_unread(ctx: Context, index: Mapping[str, int], reads_context: bool) -> Sequence[Context]:
    """The children's contexts, or ``ctx`` itself for each when no child reads its context.

    A child's key is ``split(key, n)[i]`` either way, so skipping the split for children that never
    look at it changes no number; it saves most of a small network's overhead in training mode.
    """
    if not reads_context and not ctx.buffers:
        return (ctx,) * len(index)
    return child_contexts(ctx, index, "serial")


def _param_grads_skipping_input_grad(links: list[_BackwardLink], dy: Any) -> list[Params]:
    """The grads of the backward fold, with the first child's ``param_grads`` (no ``dx`` for the data)."""
    dy, later = _fold_backward(links[1:], dy)
    segment, first, params, cache = links[0]
    try:
        return [first.param_grads(params, cache, dy), *later]
    except LayerError as err:
        raise err.under(segment) from None


def _serial_forward(
    children: tuple[Layer[Any], ...],
    index: Mapping[str, int],
    params: Params,
    x: Any,
    ctx: Context = EVAL,
    /,
    *,
    reads_context: bool,
    **slips: object,
) -> tuple[Any, SerialCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("serial", slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, "serial")
    child_ctx = _contexts_unless_unread(ctx, index, reads_context)
    return _fold_forward(_forward_links(children, index, params, child_ctx), x)


def _serial_backward(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache, dy: Any, /
) -> tuple[Any, Params]:
    return backward_plain(children, index, params, cache, dy)


def _serial_backward_params(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], params: Params, cache: SerialCache, dy: Any, /
) -> Params:
    links = _backward_links(children, index, params, cache)
    return join_children(_param_grads_skipping_input_grad(links, dy), list(index))


def _serial_buffers_of(
    children: tuple[Layer[Any], ...], index: Mapping[str, int], cache: SerialCache, /
) -> Buffers:
    states = [child.buffers_of(c) for child, c in zip(children, cache.caches, strict=True)]
    return join_children(states, list(index)) if any(states) else EMPTY


def _serial_rebuild(names: tuple[str, ...], layers: tuple[Layer[Any], ...], /) -> Layer[SerialCache]:
    """``serial`` again over ``layers``: by keyword when it was built with ``names``, else positionally."""
    return serial(**dict(zip(names, layers, strict=True))) if names else serial(*layers)


def _check_segment(name: str, combinator: str) -> None:
    if not name or "." in name:
        raise DomainError(combinator, f"a child's name must be non-empty and contain no '.', got {name!r}")


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
        raise ArgumentError("serial", "give the layers all positionally or all by name, not both")
    if not layers and not named_layers:
        raise DomainError("serial", "needs at least one layer")
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
