"""Instrumenting a network: every layer wrapped by a transparent "tap" that sees its traffic.

The private machinery behind :mod:`functional_dl.inspect`. Finding a layer's children relies on the
rule every combinator follows to stay picklable: its functions are ``functools.partial`` objects
with the child layers bound as arguments (a ``Layer`` or a tuple of them). :func:`children` reads
them from there, and :func:`rebuild` makes the same combinator over replaced children by
re-binding those arguments. A combinator whose parameter keys are not the child's index (or that
binds its children differently) registers its own reader with :func:`register_children`.

A tap is a layer with the wrapped layer's name whose forward, backward and init call the wrapped
layer's and hand what they see to a :class:`Recorder`. Its cache is ``TapCache(inner)``, which the
surrounding combinators pass along as opaquely as any other cache, so taps work inside any
combinator without the combinator knowing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl.errors import LayerError
from functional_dl.params import num_params
from functional_dl.types import EVAL, Array, Buffers, Context, Key, Layer, Params, Shape

__all__ = [
    "NonFiniteError",
    "Recorder",
    "children",
    "instrument",
    "join_path",
    "register_children",
]


class NonFiniteError(LayerError, FloatingPointError):
    """A layer produced NaN or Inf (raised by :func:`functional_dl.inspect.debug` networks)."""


#: ``(layer) -> [(segment, child), ...]``: a combinator's children with their key segments.
ChildrenFn = Callable[[Layer[Any]], list[tuple[str, Layer[Any]]]]

_REGISTRY: dict[Callable[..., Any], ChildrenFn] = {}


def register_children(forward: Callable[..., Any], reader: ChildrenFn) -> None:
    """Teach inspection how to find the children of combinators whose forward is ``partial(forward, ...)``.

    ``reader(layer)`` returns ``[(segment, child), ...]`` where ``segment`` is the prefix the
    child's parameter keys carry inside the combinator (``"0"``, ``"encoder"``, or ``""`` when
    the child's keys are not prefixed), listing the children in the order they are bound in the
    combinator's partials (that order is how they are replaced when the network is instrumented).
    """
    _REGISTRY[forward] = reader


def _bound_values(fn: object) -> list[object]:
    if not isinstance(fn, partial):
        return []
    return [*fn.args, *fn.keywords.values()]


def _default_children(layer: Layer[Any]) -> list[tuple[str, Layer[Any]]]:
    found: list[tuple[str, Layer[Any]]] = []
    for value in _bound_values(layer.forward):
        if isinstance(value, Layer):
            found.append(("", value))
        elif isinstance(value, tuple) and value and all(isinstance(v, Layer) for v in value):
            found.extend((str(i), child) for i, child in enumerate(value))
    return found


def children(layer: Layer[Any]) -> list[tuple[str, Layer[Any]]]:
    """The direct children of a combinator with their key segments; ``[]`` for a leaf layer."""
    fn = layer.forward
    if isinstance(fn, partial) and fn.func in _REGISTRY:
        return _REGISTRY[fn.func](layer)
    return _default_children(layer)


def _replace_bound(fn: Any, new_children: list[Layer[Any]]) -> Any:
    if not isinstance(fn, partial):
        return fn
    queue = iter(new_children)  # children in the order they are bound, as children() lists them

    def sub(value: object) -> object:
        if isinstance(value, Layer):
            return next(queue)
        if isinstance(value, tuple) and value and all(isinstance(v, Layer) for v in value):
            return tuple(next(queue) for _ in value)
        return value

    args = [sub(a) for a in fn.args]
    keywords = {k: sub(v) for k, v in fn.keywords.items()}
    return partial(fn.func, *args, **keywords)


def rebuild(layer: Layer[Any], new_children: list[Layer[Any]]) -> Layer[Any]:
    """The same combinator over ``new_children`` (in the order :func:`children` lists them)."""
    return Layer(
        _replace_bound(layer.init_with_buffers, new_children),
        _replace_bound(layer.forward, new_children),
        _replace_bound(layer.backward, new_children),
        _replace_bound(layer.buffers_of, new_children),
        layer.name,
        layer.reads_context,
        _replace_bound(layer.backward_params, new_children),
    )


def join_path(parent: str, segment: str) -> str:
    """``"1" + "0" -> "1.0"``; empty parts are skipped."""
    return ".".join(p for p in (parent, segment) if p)


class LayerInfo(NamedTuple):
    """What init saw of one layer."""

    name: str
    out_shape: Shape
    n_params: int
    depth: int
    is_leaf: bool


class Recorder:
    """Collects what the taps see; made fresh for each inspection call and never shared."""

    def __init__(self, *, keep: bool = True, check_finite: bool = False) -> None:
        self.keep = keep
        self.check_finite = check_finite
        self.info: dict[str, LayerInfo] = {}
        self.order: list[str] = []  # paths in the order init first reached them
        self.outputs: dict[str, Array] = {}
        self.output_grads: dict[str, Array] = {}


class _Tap(NamedTuple):
    layer: Layer[Any]
    path: str
    depth: int
    is_leaf: bool
    recorder: Recorder | None


class TapCache(NamedTuple):
    """The wrapped layer's cache."""

    inner: object


def _finite(a: object) -> bool:
    # Branches and multi-input layers pass tuples, whose entries may be None (an absent input, an
    # unused output's gradient) or integer arrays (ids, lengths, masks): finite by definition.
    if isinstance(a, tuple):
        return all(_finite(part) for part in a)
    if a is None or (isinstance(a, np.ndarray) and a.dtype.kind in "biu"):
        return True
    return bool(np.isfinite(np.asarray(a)).all())


def _tap_init(key: Key, in_shape: Shape, /, *, tap: _Tap) -> tuple[Shape, Params, Buffers]:
    if tap.recorder is not None:
        tap.recorder.order.append(tap.path)  # before the children: a parent is listed first
    out_shape, params, state = tap.layer.init_with_buffers(key, in_shape)
    if tap.recorder is not None:
        tap.recorder.info[tap.path] = LayerInfo(
            tap.layer.name, out_shape, num_params(params), tap.depth, tap.is_leaf
        )
    return out_shape, params, state


def _tap_forward(params: Params, x: Array, ctx: Context = EVAL, /, *, tap: _Tap) -> tuple[Array, TapCache]:
    y, cache = tap.layer.forward(params, x, ctx)
    rec = tap.recorder
    if rec is not None:
        if rec.keep:
            rec.outputs[tap.path] = y
        if rec.check_finite and tap.is_leaf and not _finite(y):
            where = "its input already did" if not _finite(x) else "its input was finite"
            raise NonFiniteError(tap.layer.name, f"output contains NaN or Inf ({where})")
    return y, TapCache(cache)


def _tap_backward(params: Params, cache: TapCache, dy: Array, /, *, tap: _Tap) -> tuple[Array, Params]:
    rec = tap.recorder
    if rec is not None and rec.keep:
        rec.output_grads[tap.path] = dy
    dx, grads = tap.layer.backward(params, cache.inner, dy)
    if rec is not None and rec.check_finite and tap.is_leaf:
        bad = [k for k, g in grads.items() if not _finite(g)] + ([] if _finite(dx) else ["dx"])
        if bad and _finite(dy):
            raise NonFiniteError(tap.layer.name, f"backward produced NaN or Inf in {bad} from a finite dy")
    return dx, grads


def _tap_buffers_of(cache: TapCache, /, *, tap: _Tap) -> Buffers:
    return tap.layer.buffers_of(cache.inner)


def instrument(net: Layer[Any], recorder: Recorder | None) -> Layer[Any]:
    """A copy of ``net`` computing exactly the same, with every layer (combinators too) tapped.

    Each layer is recorded under its path, the prefix its params carry. A child whose keys carry
    no prefix of their own (the layer inside a ``residual``) would share its parent's path, so it
    is recorded as ``"<parent path>/<its name>"`` instead; its own children go back to param paths.
    """

    def wrap(layer: Layer[Any], path: str, label: str, depth: int) -> Layer[Any]:
        kids = children(layer)
        inner = layer
        if kids:
            wrapped = [
                wrap(
                    child,
                    join_path(path, seg),
                    join_path(path, seg) if seg else f"{label}/{child.name}",
                    depth + 1,
                )
                for seg, child in kids
            ]
            inner = rebuild(layer, wrapped)
        tap = _Tap(inner, label, depth, not kids, recorder)
        return Layer(
            partial(_tap_init, tap=tap),
            partial(_tap_forward, tap=tap),
            partial(_tap_backward, tap=tap),
            partial(_tap_buffers_of, tap=tap),
            layer.name,
            # No backward_params: the tap records every layer's incoming gradient through backward.
            layer.reads_context,
        )

    return wrap(net, "", "", 0)
