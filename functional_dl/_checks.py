"""Cheap input validation shared by the layers and the losses, and the rules they follow.

The rules for layers
--------------------
Every layer applies these in its own ``forward`` and ``backward``, next to the comparisons its
maths needs anyway (the builder adds no validating wrapper: one more Python call per layer call is
what such a wrapper costs, and it shows in small networks' training steps).

1. **Arrays, not array-likes.** A layer's input ``x``, its incoming gradient ``dy`` and each of its
   params and buffers are NumPy arrays (an ``ndarray`` or a subclass: views, read-only,
   non-contiguous and memory-mapped arrays are all fine). A list, a tuple, a scalar or ``None``
   there is a :class:`~functional_dl.errors.DTypeError` saying what was found. Layers never
   convert: a conversion on every call would hide a copy, and a list reaching the middle of a
   network is a bug. What users hand over as data does convert, with ``np.asarray``: the
   predictions and targets of losses and metrics, and the data of ``fit``/``evaluate``. A tuple is
   an input only of the layers that document tuple inputs (the multi-input contract of
   :mod:`functional_dl.types`); everywhere else it is refused like a list.
2. **Params are what ``init`` makes.** ``forward`` and ``backward`` compare the params with what
   ``init`` declares for the input at hand: exactly the declared keys (a
   :class:`~functional_dl.errors.ParamsError` listing the missing and unexpected ones) and each an
   array of the declared shape (a :class:`~functional_dl.errors.ShapeError` naming the key, the
   shape expected and the shape found): a mis-mapped ``state_dict`` is refused, never broadcast.
   The same holds for buffers (batch norm's running statistics).
3. **Backward takes its own forward's cache.** ``backward`` checks that the cache has its forward's
   cache type and, where several kinds of layer share one (the activations, layer and group norm,
   the recurrent layers, the convolutions and pools of different ranks), the kind the cache
   records; ``None`` or another layer's cache is a ``ParamsError``. The params it is given must fit
   the forward that made the cache (a weight of another shape is refused, not multiplied).
4. **One floating dtype per layer.** A layer's dtype is its params' (float32 unless the factory's
   ``dtype=`` says otherwise, which must be a floating dtype; :func:`functional_dl.params.cast`
   changes it). Every param and buffer has it, and so do ``x`` and ``dy``: anything else is a
   ``DTypeError``, never a silent up- or downcast. A layer without params takes ``x`` of any
   floating dtype and then wants ``dy`` of that dtype. Integer inputs (ids, lengths) and boolean
   masks are the documented exceptions of the layers that take them.
5. **Factory arguments are checked when the layer is made.** Sizes are positive ints (not bools,
   floats or strings), flags are bools, rates and epsilons are real numbers in range, initializers
   are callables, option names are known: anything else is a
   :class:`~functional_dl.errors.DomainError` (a ``dtype=`` that is not floating, a ``DTypeError``)
   naming the layer, the argument and the value. ``init``'s ``in_shape`` is checked by the
   builder's ``init`` for every layer: a tuple of positive sizes with ``None`` for unknown ones
   (the batch), nested only for the layers that take tuples.
6. **Empty batches go through**, as in PyTorch: a batch of 0 gives an output of batch 0 in
   ``forward`` and an empty ``dx`` and zero gradients in ``backward``, in every layer (batch norm in
   training mode leaves its running statistics as they were).
7. **Forward takes no keywords.** ``forward(params, x, ctx)`` takes its arguments by position;
   every layer's ``forward`` collects stray keywords (``train=True``, ``ctx=...``) in
   ``**slips`` and, first thing, ``if slips:`` calls :func:`refuse_forward_keywords`, an
   :class:`~functional_dl.errors.ArgumentError` naming the layer, the keywords and the call to
   write (``tests/test_friendly_errors.py`` tries it in every layer of every registry case). The
   good path pays for one truth test of an empty dict.

Errors name the layer by its kind (``"dense"``); the combinators a layer sits in prefix their
segments on the way out, so the message reads ``"encoder.2.dense: ..."``.

The combinators check their own caches and params with the same :func:`check_cache` and
:func:`check_no_params` (their routing rules are in :mod:`functional_dl.combinators._routing`),
and refuse keywords to ``forward`` by rule 7 too.

Cost
----
Every check here is a handful of attribute reads and comparisons on the good path: ``type(x) is
np.ndarray`` first (an ``ndarray`` subclass takes the slow path, which accepts it), then tuple and
dtype comparisons. Nothing loops over elements or allocates on the good path, and a message is only
formatted once something is wrong.

A layer on the hot path of small networks (``dense``, the activations) goes one step further: it
folds the good paths of its checks into one condition of plain comparisons, and calls the checks
themselves only when that condition fails; they then raise the message, or let an ``ndarray``
subclass through. The condition is the checks' fast paths and nothing else, so the rules stay
those stated here (``tests/layers/test_dense.py`` checks that the two agree). A Python call costs
about as much as the comparisons of a check, and the MNIST-1D MLP's training step makes a few
dozen layer calls.

This module sits below both :mod:`functional_dl.layers` and :mod:`functional_dl.losses`, so
neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, NoReturn

import numpy as np

from functional_dl.errors import ArgumentError, DTypeError, ParamsError, ShapeError, describe_shape
from functional_dl.types import Array, Params

__all__ = [
    "NO_PARAMS",
    "check_cache",
    "check_dy",
    "check_float",
    "check_keys",
    "check_no_params",
    "check_param",
    "check_same_dtype",
    "check_same_shape",
    "not_an_array",
    "refuse_forward_keywords",
    "wrong_cache",
]

#: The expected keys of a layer without parameters.
NO_PARAMS: frozenset[str] = frozenset()


def not_an_array(value: object, what: str, layer: str) -> DTypeError:
    """The error for a non-array where a layer wants an array (rule 1 of the module docstring)."""
    kind = "a tuple (this layer takes one array)" if isinstance(value, tuple) else type(value).__name__
    return DTypeError(
        layer,
        f"expected {what} as a NumPy array, got {kind}; layers do not convert array-likes "
        "(convert the data once with np.asarray)",
    )


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray)


def _not_a_mapping(params: object, layer: str) -> ParamsError:
    return ParamsError(layer, f"expected params as a mapping of arrays, got {type(params).__name__}")


def check_keys(params: Params, expected: AbstractSet[str], layer: str) -> None:
    """Raise :class:`ParamsError` unless ``params`` is a mapping with exactly the keys ``expected``."""
    try:
        keys = params.keys()
    except AttributeError:
        raise _not_a_mapping(params, layer) from None
    if keys != expected:
        got = set(keys)
        parts = []
        if expected - got:
            parts.append(f"missing {sorted(expected - got)}")
        if got - expected:
            parts.append(f"unexpected {sorted(got - expected, key=repr)}")
        raise ParamsError(layer, "parameter keys do not match: " + "; ".join(parts))


def check_no_params(params: Params, layer: str) -> None:
    """Raise :class:`ParamsError` unless ``params`` is an empty mapping (a layer without params)."""
    if params or type(params) is not dict:
        if not isinstance(params, Mapping):
            raise _not_a_mapping(params, layer)
        check_keys(params, NO_PARAMS, layer)


def check_float(x: Array, layer: str, what: str = "input") -> None:
    """Raise :class:`DTypeError` unless ``x`` is an ndarray of a floating-point dtype."""
    if type(x) is not np.ndarray or x.dtype.kind != "f":
        if not _is_array(x):
            raise not_an_array(x, what, layer)
        if x.dtype.kind != "f":
            raise DTypeError(
                layer, f"expected a floating-point {what} (float32 or float64), got dtype {x.dtype}"
            )


def check_same_dtype(x: Array, expected: Array, layer: str, what: str = "input") -> None:
    """Raise :class:`DTypeError` unless ``x`` is an ndarray with ``expected``'s dtype (no silent cast)."""
    if type(x) is not np.ndarray or x.dtype != expected.dtype:
        if not _is_array(x):
            raise not_an_array(x, what, layer)
        if x.dtype != expected.dtype:
            raise DTypeError(
                layer,
                f"expected {what} of dtype {expected.dtype} (the parameters' dtype), got {x.dtype}; "
                "cast the input or the parameters (functional_dl.params.cast)",
            )


def check_same_shape(dy: Array, shape: tuple[int, ...], layer: str, what: str = "dy") -> None:
    """Raise unless ``dy`` is an ndarray of shape ``shape`` (:class:`ShapeError`, or ``DTypeError``)."""
    if type(dy) is not np.ndarray or dy.shape != shape:
        if not _is_array(dy):
            raise not_an_array(dy, what, layer)
        if dy.shape != shape:
            raise ShapeError(
                layer, f"expected {what} of shape {describe_shape(shape)}, got {describe_shape(dy.shape)}"
            )


def check_dy(dy: Array, shape: tuple[int, ...], dtype: np.dtype[Any], layer: str, what: str = "dy") -> None:
    """Backward's incoming gradient: an ndarray of ``shape`` and of the layer's ``dtype``.

    A float64 ``dy`` into a float32 layer would give float64 gradients; an integer or complex one
    would give gradients of no use to an optimizer. Both are refused.
    """
    if type(dy) is not np.ndarray or dy.shape != shape or dy.dtype != dtype:
        check_same_shape(dy, shape, layer, what)
        if dy.dtype != dtype:
            raise DTypeError(layer, f"expected {what} of dtype {dtype} (the layer's), got {dy.dtype}")


def check_param(
    params: Params,
    key: str,
    shape: tuple[int, ...],
    layer: str,
    dtype: np.dtype[Any] | None = None,
    *,
    what: str = "parameter",
) -> Array:
    """``params[key]`` after checking it is an ndarray of ``shape`` and of ``dtype``.

    Without ``dtype`` the parameter must be of some floating dtype: it is then the layer's first
    parameter, whose dtype the others (and the input) are compared with. Call :func:`check_keys`
    first, so ``key`` is there. ``what`` names it in messages (``"buffer"`` for running statistics).
    """
    a = params[key]
    if (
        type(a) is np.ndarray
        and a.shape == shape
        and (a.dtype.kind == "f" if dtype is None else a.dtype == dtype)
    ):
        return a
    if not _is_array(a):
        raise not_an_array(a, f"{what} {key!r}", layer)
    if a.shape != shape:
        raise ShapeError(
            layer, f"expected {what} {key!r} of shape {describe_shape(shape)}, got {describe_shape(a.shape)}"
        )
    if a.dtype.kind != "f":
        raise DTypeError(layer, f"expected {what} {key!r} of a floating-point dtype, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise DTypeError(
            layer,
            f"expected {what} {key!r} of dtype {dtype} (the layer's), got {a.dtype}; "
            "give a layer's params and buffers one dtype (functional_dl.params.cast)",
        )
    return a


def wrong_cache(cache: object, expected: str, layer: str) -> NoReturn:
    """Raise the :class:`ParamsError` for a cache that this layer's forward did not make."""
    got = "None" if cache is None else type(cache).__name__
    kind = getattr(cache, "kind", None)
    if isinstance(kind, str):  # a cache type several kinds of layer share names its kind
        got += f" of {kind}"
    raise ParamsError(
        layer,
        f"expected the cache of this layer's forward ({expected}), got {got}; pass backward the "
        "cache that this layer's forward returned",
    )


def check_cache(cache: object, kind: type, layer: str) -> None:
    """Raise :class:`ParamsError` unless ``cache`` is a ``kind`` (the type this layer's forward makes)."""
    if type(cache) is not kind and not isinstance(cache, kind):
        wrong_cache(cache, kind.__name__, layer)


def refuse_forward_keywords(layer: str, keywords: Mapping[str, object]) -> NoReturn:
    """Raise :class:`ArgumentError` for keywords given to ``forward`` (``train=True``, a PyTorch habit).

    ``forward(params, x, ctx)`` takes its three arguments by position; training mode, the key and
    the buffers travel in the context. Every layer and combinator collects stray keywords
    (``**slips``) only to call this (rule 7 of the module docstring), so the slip names the fix
    instead of ending in Python's ``unexpected keyword argument``.
    """
    given = ", ".join(f"{name}={value!r}" for name, value in keywords.items())
    if "ctx" in keywords:
        fix = "pass the context by position: forward(params, x, ctx)"
    else:
        fix = (
            "training mode, the key and the buffers travel in the context, the third argument: "
            "forward(params, x, fdl.Context(train=True, key=key, buffers=buffers))"
        )
    raise ArgumentError(
        layer, f"forward takes (params, x, ctx) by position and no keywords, got {given}; {fix}"
    )
