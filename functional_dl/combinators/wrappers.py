"""Single-child wrappers: ``residual(f)`` (a skip connection) and ``named(name, f)`` (a key prefix).

``residual(f)``: ``y = x + f(x)``; backward ``dx = dy + df^T dy``, ``grads = f``'s grads. It is
transparent for keys and paths: its params are exactly ``f``'s, and an error inside ``f`` reads as
it would without the wrapper. ``f`` must keep the shape of its input.

``named(name, f)``: ``f`` with every parameter and state key prefixed by ``name + "."`` and every
error path by ``name``, so a sub-network reads like ``encoder.0.w`` and fails like
``encoder.2.dense: ...``. The key and train flag of ``ctx`` pass through unchanged. A param or
buffer key outside ``name + "."`` is refused (a :class:`~functional_dl.errors.ParamsError` naming
it), as ``serial`` refuses a key that names none of its children.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from functional_dl._checks import check_cache, refuse_forward_keywords
from functional_dl.combinators._routing import bad_context, check_children, strip_segment
from functional_dl.errors import DomainError, DTypeError, LayerError, ParamsError, ShapeError, describe_shape
from functional_dl.params import FrozenParams, prefix
from functional_dl.types import EMPTY, EVAL, Array, Buffers, Child, Context, Key, Layer, Params, Shape

__all__ = ["NamedCache", "ResidualCache", "named", "residual"]


class ResidualCache(NamedTuple):
    """The wrapped layer's cache (opaque)."""

    inner: object


def _residual_init(child: Layer[Any], key: Key, in_shape: Shape, /) -> tuple[Shape, Params, Buffers]:
    out_shape, params, state = child.init_with_buffers(key, in_shape)
    if tuple(out_shape) != tuple(in_shape):
        raise ShapeError(
            "residual",
            f"the wrapped {child.name} maps {describe_shape(in_shape)} to {describe_shape(out_shape)}; "
            "x + f(x) needs f to keep the shape",
        )
    return out_shape, params, state


def _residual_forward(
    child: Layer[Any], params: Params, x: Array, ctx: Context = EVAL, /, **slips: object
) -> tuple[Array, ResidualCache]:
    if slips:
        refuse_forward_keywords("residual", slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, "residual")
    if not isinstance(x, np.ndarray):
        raise DTypeError("residual", f"x + f(x) needs one NumPy array as x, got {type(x).__name__}")
    if not isinstance(params, dict | Mapping):  # its params are its child's, but must be a mapping
        raise ParamsError("residual", f"expected params as a mapping of arrays, got {type(params).__name__}")
    fx, cache = child.forward(params, x, ctx)
    if type(fx) is not np.ndarray or fx.shape != x.shape or fx.dtype != x.dtype:
        _check_kept(child, x, fx)
    return x + fx, ResidualCache(cache)


def _check_kept(child: Layer[Any], x: object, fx: object) -> None:
    """``x + f(x)`` needs ``f`` to map one array to one array of the same shape and dtype."""
    if not isinstance(x, np.ndarray) or not isinstance(fx, np.ndarray):
        kinds = f"{type(x).__name__} to {type(fx).__name__}"
        raise ShapeError(
            "residual", f"the wrapped {child.name} maps {kinds}; x + f(x) needs one array in and out"
        )
    if fx.shape != x.shape:
        raise ShapeError(
            "residual",
            f"the wrapped {child.name} maps {describe_shape(x.shape)} to {describe_shape(fx.shape)}; "
            "x + f(x) needs f to keep the shape",
        )
    if fx.dtype != x.dtype:
        raise DTypeError(
            "residual", f"the wrapped {child.name} maps {x.dtype} to {fx.dtype}; x + f(x) needs one dtype"
        )


def _residual_backward(
    child: Layer[Any], params: Params, cache: ResidualCache, dy: Array, /
) -> tuple[Array, Params]:
    check_cache(cache, ResidualCache, "residual")
    if not isinstance(params, dict | Mapping):
        raise ParamsError("residual", f"expected params as a mapping of arrays, got {type(params).__name__}")
    dx, grads = child.backward(params, cache.inner, dy)  # the child checks dy against its output
    return dx + dy, grads


def _residual_backward_params(
    child: Layer[Any], params: Params, cache: ResidualCache, dy: Array, /
) -> Params:
    check_cache(cache, ResidualCache, "residual")
    return child.param_grads(params, cache.inner, dy)  # the skip path carries no parameters


def _residual_buffers_of(child: Layer[Any], cache: ResidualCache, /) -> Buffers:
    check_cache(cache, ResidualCache, "residual")
    return child.buffers_of(cache.inner)


def _residual_rebuild(layers: tuple[Layer[Any], ...], /) -> Layer[ResidualCache]:
    (layer,) = layers
    return residual(layer)


def residual(layer: Layer[Any]) -> Layer[ResidualCache]:
    """A skip connection around ``layer``: ``y = x + layer(x)``.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random, serial
        >>> block = residual(serial(L.dense(3), L.relu()))
        >>> _, params = block.init(random.key(0), (None, 3))
        >>> sorted(params)
        ['0.b', '0.w']
    """
    check_children((layer,), "residual")
    return Layer(
        init_with_buffers=partial(_residual_init, layer),
        forward=partial(_residual_forward, layer),
        backward=partial(_residual_backward, layer),
        buffers_of=partial(_residual_buffers_of, layer),
        name="residual",
        reads_context=layer.reads_context,
        backward_params=partial(_residual_backward_params, layer),
        children=(Child("", layer),),  # its keys are the child's own
        rebuild=_residual_rebuild,
    )


class NamedCache(NamedTuple):
    """The wrapped layer's cache (opaque)."""

    inner: object


def _named_init(name: str, child: Layer[Any], key: Key, in_shape: Shape, /) -> tuple[Shape, Params, Buffers]:
    try:
        out_shape, params, state = child.init_with_buffers(key, in_shape)
    except LayerError as err:
        raise err.under(name) from None
    return out_shape, FrozenParams(prefix(params, name)), FrozenParams(prefix(state, name))


def _named_forward(
    name: str, child: Layer[Any], params: Params, x: Any, ctx: Context = EVAL, /, **slips: object
) -> tuple[Any, NamedCache]:
    if slips:
        refuse_forward_keywords(name, slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, name)
    inner_ctx = (
        ctx._replace(buffers=strip_segment(ctx.buffers, name, name, "buffers")) if ctx.buffers else ctx
    )
    inner = strip_segment(params, name, name)
    try:
        y, cache = child.forward(inner, x, inner_ctx)
    except LayerError as err:
        raise err.under(name) from None
    return y, NamedCache(cache)


def _named_backward(
    name: str, child: Layer[Any], params: Params, cache: NamedCache, dy: Any, /
) -> tuple[Any, Params]:
    check_cache(cache, NamedCache, name)
    inner = strip_segment(params, name, name)
    try:
        dx, grads = child.backward(inner, cache.inner, dy)
    except LayerError as err:
        raise err.under(name) from None
    return dx, prefix(grads, name)


def _named_backward_params(
    name: str, child: Layer[Any], params: Params, cache: NamedCache, dy: Any, /
) -> Params:
    check_cache(cache, NamedCache, name)
    inner = strip_segment(params, name, name)
    try:
        grads = child.param_grads(inner, cache.inner, dy)
    except LayerError as err:
        raise err.under(name) from None
    return prefix(grads, name)


def _named_buffers_of(name: str, child: Layer[Any], cache: NamedCache, /) -> Buffers:
    check_cache(cache, NamedCache, name)
    state = child.buffers_of(cache.inner)
    return prefix(state, name) if state else EMPTY


def _named_rebuild(name: str, layers: tuple[Layer[Any], ...], /) -> Layer[NamedCache]:
    (layer,) = layers
    return named(name, layer)


def named(name: str, layer: Layer[Any]) -> Layer[NamedCache]:
    """``layer`` with its keys under ``name``: params ``"w"`` become ``"<name>.w"``.

    Args:
        name: the prefix, non-empty and without ``"."``.
        layer: the wrapped layer or network.

    Example:
        >>> from functional_dl import layers as L, random, serial
        >>> encoder = named("encoder", serial(L.dense(4), L.relu(), L.dense(2)))
        >>> sorted(encoder.init(random.key(0), (None, 3))[1])
        ['encoder.0.b', 'encoder.0.w', 'encoder.2.b', 'encoder.2.w']
    """
    if not isinstance(name, str) or not name or "." in name:
        raise DomainError("named", f"name must be a non-empty str without '.', got {name!r}")
    check_children((layer,), "named")
    return Layer(
        init_with_buffers=partial(_named_init, name, layer),
        forward=partial(_named_forward, name, layer),
        backward=partial(_named_backward, name, layer),
        buffers_of=partial(_named_buffers_of, name, layer),
        name=name,
        reads_context=layer.reads_context,
        backward_params=partial(_named_backward_params, name, layer),
        children=(Child(name, layer),),
        rebuild=partial(_named_rebuild, name),
    )
