"""Cheap input validation shared by the layers and the losses.

These run on every call, so each is a handful of attribute reads and comparisons; the message is
only formatted once something is wrong. Errors name the layer (or loss) by its kind; combinators
prefix the path on the way out. This module sits below both :mod:`functional_dl.layers` and
:mod:`functional_dl.losses`, so neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import NoReturn

from functional_dl.errors import ArgumentError, DTypeError, ParamsError, ShapeError, describe_shape
from functional_dl.types import Array, Params

__all__ = [
    "NO_PARAMS",
    "check_float",
    "check_keys",
    "check_same_dtype",
    "check_same_shape",
    "refuse_forward_keywords",
]

#: The expected keys of a layer without parameters.
NO_PARAMS: frozenset[str] = frozenset()


def check_keys(params: Params, expected: AbstractSet[str], layer: str) -> None:
    """Raise :class:`ParamsError` unless ``params`` has exactly the keys ``expected``."""
    if params.keys() != expected:
        got = set(params.keys())
        parts = []
        if expected - got:
            parts.append(f"missing {sorted(expected - got)}")
        if got - expected:
            parts.append(f"unexpected {sorted(got - expected)}")
        raise ParamsError(layer, "parameter keys do not match: " + "; ".join(parts))


def check_float(x: Array, layer: str, what: str = "input") -> None:
    """Raise :class:`DTypeError` unless ``x`` is a floating-point ndarray."""
    if x.dtype.kind != "f":
        raise DTypeError(layer, f"expected a floating-point {what} (float32 or float64), got dtype {x.dtype}")


def check_same_dtype(x: Array, expected: Array, layer: str, what: str = "input") -> None:
    """Raise :class:`DTypeError` unless ``x.dtype == expected.dtype`` (no silent up- or downcast)."""
    if x.dtype != expected.dtype:
        raise DTypeError(
            layer,
            f"expected {what} of dtype {expected.dtype} (the parameters' dtype), got {x.dtype}; "
            "cast the input or the parameters (functional_dl.params.cast)",
        )


def check_same_shape(dy: Array, shape: tuple[int, ...], layer: str, what: str = "dy") -> None:
    """Raise :class:`ShapeError` unless ``dy.shape == shape`` (used on backward's incoming gradient)."""
    if dy.shape != shape:
        raise ShapeError(
            layer, f"expected {what} of shape {describe_shape(shape)}, got {describe_shape(dy.shape)}"
        )


def refuse_forward_keywords(layer: str, keywords: Mapping[str, object]) -> NoReturn:
    """Raise :class:`ArgumentError` for keywords given to ``forward`` (``train=True``, a PyTorch habit).

    ``forward(params, x, ctx)`` takes its three arguments by position; training mode, the key and
    the buffers travel in the context. The combinators and the layers that read the context collect
    stray keywords (``**keywords``) only to call this, so the slip names the fix instead of ending
    in Python's ``unexpected keyword argument``.
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
