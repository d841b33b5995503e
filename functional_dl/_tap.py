"""Instrumenting a network: every layer wrapped by a transparent "tap" that sees its traffic.

The private machinery behind :mod:`functional_dl.inspect`. A layer's children are read from
``Layer.children`` and the combinator is built again over tapped children with ``Layer.rebuild``
(the contract in :mod:`functional_dl.types`); a layer without children is tapped as a leaf.

A tap is a layer with the wrapped layer's name whose forward, backward and init call the wrapped
layer's and hand what they see to a :class:`Recorder`. Its cache is ``TapCache(inner)``, which the
surrounding combinators pass along as opaquely as any other cache, so taps work inside any
combinator without the combinator knowing.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import refuse_forward_keywords
from functional_dl.errors import LayerError
from functional_dl.params import num_params
from functional_dl.types import EVAL, Array, Buffers, Context, Key, Layer, Params, Shape

__all__ = ["NonFiniteError", "Recorder", "instrument", "join_path"]


class NonFiniteError(LayerError, FloatingPointError):
    """A layer produced NaN or Inf (raised by :func:`functional_dl.inspect.debug` networks)."""


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


def _tap_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, tap: _Tap, **slips: object
) -> tuple[Array, TapCache]:
    if slips:  # forward(params, x, train=True) on a tapped network: as the layer itself would say
        refuse_forward_keywords(tap.layer.name, slips)
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


def _rebuild(layer: Layer[Any], new_children: tuple[Layer[Any], ...]) -> Layer[Any]:
    if layer.rebuild is None:
        raise LayerError(
            layer.name,
            "has children but no rebuild: a combinator that lists its "
            "children must say how to build it again over new ones (see functional_dl.types)",
        )
    return layer.rebuild(new_children)


def _tap_layer(tap: _Tap) -> Layer[Any]:
    inner = tap.layer
    return Layer(
        partial(_tap_init, tap=tap),
        partial(_tap_forward, tap=tap),
        partial(_tap_backward, tap=tap),
        partial(_tap_buffers_of, tap=tap),
        inner.name,
        inner.reads_context,
        None,  # no backward_params: the tap records every layer's incoming gradient through backward
        inner.children,  # a tapped network is walked like the network itself
        partial(_retap, tap) if inner.children else None,
    )


def _retap(tap: _Tap, new_children: tuple[Layer[Any], ...], /) -> Layer[Any]:
    """The rebuild of a tapped combinator: the same tap over the combinator rebuilt."""
    return _tap_layer(tap._replace(layer=_rebuild(tap.layer, new_children)))


def instrument(net: Layer[Any], recorder: Recorder | None) -> Layer[Any]:
    """A copy of ``net`` computing exactly the same, with every layer (combinators too) tapped.

    Each layer is recorded under its path, the prefix its params carry. A child whose keys carry
    no prefix of their own (the layer inside a ``residual``) would share its parent's path, so it
    is recorded as ``"<parent path>/<its name>"`` instead; its own children go back to param paths.
    """

    def wrap(layer: Layer[Any], path: str, label: str, depth: int) -> Layer[Any]:
        inner = layer
        if layer.children:
            wrapped = tuple(
                wrap(
                    child.layer,
                    join_path(path, child.segment),
                    join_path(path, child.segment) if child.segment else f"{label}/{child.layer.name}",
                    depth + 1,
                )
                for child in layer.children
            )
            inner = _rebuild(layer, wrapped)
        return _tap_layer(_Tap(inner, label, depth, not layer.children, recorder))

    return wrap(net, "", "", 0)
