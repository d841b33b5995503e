"""``tie(layer, {alias: source})``: one parameter used in two places of a network.

A network's params are a flat mapping in which every layer owns its own keys; tying says that the
array under ``alias`` *is* the array under ``source``. The tied network stores it once, under
``source``: its ``params`` (and so its gradients, optimizer state and checkpoints) have no
``alias`` key. Forward hands the wrapped layer its params with ``alias`` filled in by the source
array itself (no copy), and backward adds up the gradients of both uses, the chain rule for a
weight read twice::

    grads[source] = dL/d(weight at source) + dL/d(weight at alias)

The classic use is a language model whose output projection is its embedding's weight (both
``(vocab, d_model)``: a dense weight is ``(n_out, n_in)``)::

    tie(serial(embed=embedding(V, d), ..., head=dense(V, use_bias=False)), {"head.w": "embed.weight"})

An alias and its source must have the same shape (checked at ``init``); an alias may not be a
source itself, and several aliases may share one source. An empty mapping ties nothing (the layer
computes as it would unwrapped), so a factory that may or may not tie returns one type. The
wrapped layer's keys, errors and context pass through unchanged (its segment is ``""``, as
inside ``residual``). :func:`ties_of` reads a tied layer's mapping back (weight interop uses it to
pair the alias with the other library's module as if untied).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from functional_dl._checks import check_cache, refuse_forward_keywords
from functional_dl.combinators._routing import bad_context, check_children
from functional_dl.errors import DomainError, ParamsError, describe_shape
from functional_dl.params import FrozenParams
from functional_dl.types import EVAL, Array, Buffers, Child, Context, Key, Layer, Params, Shape

__all__ = ["TieCache", "tie", "ties_of"]

_NAME = "tie"

#: The ties as ``(alias, source)`` pairs, in the order given.
_Ties = tuple[tuple[str, str], ...]


class TieCache(NamedTuple):
    """The wrapped layer's cache (opaque)."""

    inner: object


def _tie_init(child: Layer[Any], ties: _Ties, key: Key, in_shape: Shape, /) -> tuple[Shape, Params, Buffers]:
    out_shape, params, buffers = child.init_with_buffers(key, in_shape)
    for alias, source in ties:
        missing = [k for k in (alias, source) if k not in params]
        if missing:
            raise ParamsError(
                _NAME, f"cannot tie {alias!r} to {source!r}: the network has no parameter {missing[0]!r}"
            )
        if params[alias].shape != params[source].shape:
            raise ParamsError(
                _NAME,
                f"cannot tie {alias!r} {describe_shape(params[alias].shape)} to {source!r} "
                f"{describe_shape(params[source].shape)}: tied parameters need one shape",
            )
    aliases = {alias for alias, _ in ties}
    return out_shape, FrozenParams({k: v for k, v in params.items() if k not in aliases}), buffers


def _full(ties: _Ties, params: Params) -> dict[str, Array]:
    """The wrapped layer's params: ``params`` with every alias filled in by its source's array."""
    if not isinstance(params, dict | Mapping):
        raise ParamsError(_NAME, f"expected params as a mapping of arrays, got {type(params).__name__}")
    full = dict(params)
    for alias, source in ties:
        if alias in params:
            raise ParamsError(
                _NAME, f"{alias!r} is tied to {source!r} and must not be in the params (it is stored once)"
            )
        if source not in params:
            raise ParamsError(_NAME, f"parameter keys do not match: missing [{source!r}] (tied to {alias!r})")
        full[alias] = params[source]
    return full


def _summed(ties: _Ties, grads: Params) -> dict[str, Array]:
    """The gradients of the tied params: each alias's gradient added to its source's."""
    aliases = {alias for alias, _ in ties}
    out = {k: g for k, g in grads.items() if k not in aliases}
    for alias, source in ties:
        out[source] = out[source] + grads[alias]  # a fresh array: the child's gradients are untouched
    return out


def _tie_forward(
    child: Layer[Any], ties: _Ties, params: Params, x: Any, ctx: Context = EVAL, /, **slips: object
) -> tuple[Any, TieCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(_NAME, slips)
    if type(ctx) is not Context:
        raise bad_context(ctx, _NAME)
    y, cache = child.forward(_full(ties, params), x, ctx)
    return y, TieCache(cache)


def _tie_backward(
    child: Layer[Any], ties: _Ties, params: Params, cache: TieCache, dy: Any, /
) -> tuple[Any, Params]:
    check_cache(cache, TieCache, _NAME)
    dx, grads = child.backward(_full(ties, params), cache.inner, dy)
    return dx, _summed(ties, grads)


def _tie_backward_params(
    child: Layer[Any], ties: _Ties, params: Params, cache: TieCache, dy: Any, /
) -> Params:
    check_cache(cache, TieCache, _NAME)
    return _summed(ties, child.param_grads(_full(ties, params), cache.inner, dy))


def _tie_buffers_of(child: Layer[Any], cache: TieCache, /) -> Buffers:
    check_cache(cache, TieCache, _NAME)
    return child.buffers_of(cache.inner)


@dataclass(frozen=True, slots=True)
class _TieRebuild:
    """A tie's ``Layer.rebuild``: its ties kept as data (for :func:`ties_of`), and ``tie`` again."""

    ties: _Ties

    def __call__(self, layers: tuple[Layer[Any], ...], /) -> Layer[TieCache]:
        (layer,) = layers
        return tie(layer, dict(self.ties))


def tie(layer: Layer[Any], ties: Mapping[str, str]) -> Layer[TieCache]:
    """``layer`` with each parameter ``alias`` the same array as ``source``, stored once under ``source``.

    Args:
        layer: the network.
        ties: ``{alias: source}`` parameter keys of ``layer`` (``{"head.w": "embed.weight"}``);
            ``{}`` ties nothing.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random, serial
        >>> net = tie(serial(a=L.dense(3), act=L.tanh(), b=L.dense(3)), {"b.w": "a.w"})
        >>> _, params = net.init(random.key(0), (None, 3))
        >>> sorted(params)                                    # "b.w" is "a.w"
        ['a.b', 'a.w', 'b.b']
        >>> y, cache = net.forward(params, np.ones((2, 3), np.float32))
        >>> sorted(net.backward(params, cache, np.ones_like(y))[1]) == sorted(params)
        True
    """
    check_children((layer,), _NAME)
    if not isinstance(ties, Mapping):
        raise DomainError(_NAME, f"ties must be a mapping {{alias: source}}, got {ties!r}")
    pairs: _Ties = tuple(ties.items())
    for alias, source in pairs:
        if not isinstance(alias, str) or not isinstance(source, str) or alias == source:
            raise DomainError(_NAME, f"each tie is two different parameter keys, got {alias!r}: {source!r}")
        if source in ties:
            raise DomainError(_NAME, f"{source!r} is an alias, so it cannot be the source of {alias!r}")
    return Layer(
        init_with_buffers=partial(_tie_init, layer, pairs),
        forward=partial(_tie_forward, layer, pairs),
        backward=partial(_tie_backward, layer, pairs),
        buffers_of=partial(_tie_buffers_of, layer),
        name=_NAME,
        reads_context=layer.reads_context,
        backward_params=partial(_tie_backward_params, layer, pairs),
        children=(Child("", layer),),  # its keys are the child's own (less the aliases)
        rebuild=_TieRebuild(pairs),
    )


def ties_of(layer: Layer[Any]) -> dict[str, str]:
    """The ``{alias: source}`` mapping of a layer built by :func:`tie`; ``{}`` for any other layer.

    Only the layer itself is read, not its children (a ``tie`` inside a ``serial`` is found by
    walking ``Layer.children``). The ties are read from the ``rebuild`` that :func:`tie` gives
    the layer, which holds them as data; a user's own combinator that happens to be named
    ``"tie"`` ties nothing here.

    Example:
        >>> from functional_dl import layers as L, serial
        >>> ties_of(tie(serial(L.dense(3), L.dense(3)), {"1.w": "0.w"}))
        {'1.w': '0.w'}
        >>> ties_of(L.dense(3))
        {}
    """
    return dict(layer.rebuild.ties) if isinstance(layer.rebuild, _TieRebuild) else {}
