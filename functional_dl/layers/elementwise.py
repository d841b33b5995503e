"""The machinery shared by elementwise layers (activations): one forward, one backward, one factory.

:func:`elementwise` is :func:`~functional_dl.layers._builder.build` for this family: it binds a
``value``/``grad`` pair into the shared forward and backward below.

An elementwise layer is a pair of array functions: ``value(x) -> y`` and
``grad(x, y, dy) -> dx`` (the vector-Jacobian product, which may use the input, the output or both).
It has no parameters, keeps the shape and dtype of its input, and caches ``x`` and ``y`` (references,
not copies) with the layer's kind: every activation shares the cache type, and a sigmoid's backward
given a relu's cache would otherwise compute ``dy * y (1 - y)`` with the relu's ``y``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Protocol

import numpy as np

from functional_dl._checks import check_dy, check_float, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.layers._builder import build, keeps_shape
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

__all__ = ["ElementwiseCache", "ElementwiseGrad", "ElementwiseValue", "elementwise"]


class ElementwiseValue(Protocol):
    """``(x) -> y``, same shape and dtype."""

    def __call__(self, x: Array, /) -> Array: ...


class ElementwiseGrad(Protocol):
    """``(x, y, dy) -> dx``: the vector-Jacobian product of an elementwise function."""

    def __call__(self, x: Array, y: Array, dy: Array, /) -> Array: ...


class ElementwiseCache(NamedTuple):
    """Input and output of the forward pass, both of the input's shape, and the layer's kind."""

    x: Array
    y: Array
    kind: str  # the layer's name ("relu"): which backward this cache belongs to


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, value: ElementwiseValue, name: str, **slips: object
) -> tuple[Array, ElementwiseCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    # The checks' good path as one condition (no call per check on every step of a small network);
    # otherwise the checks themselves raise the message, or let an ndarray subclass through.
    if params or type(params) is not dict or type(x) is not np.ndarray or x.dtype.kind != "f":
        check_no_params(params, name)
        check_float(x, name)
    y = value(x)
    return y, ElementwiseCache(x, y, name)


def _backward(
    params: Params, cache: ElementwiseCache, dy: Array, /, *, grad: ElementwiseGrad, name: str
) -> tuple[Array, Params]:
    if (
        type(cache) is not ElementwiseCache
        or cache.kind != name
        or params
        or type(params) is not dict
        or type(dy) is not np.ndarray
        or dy.shape != cache.x.shape
        or dy.dtype != cache.x.dtype
    ):
        _check_backward(params, cache, dy, name)
    return grad(cache.x, cache.y, dy), EMPTY


def _check_backward(params: Params, cache: ElementwiseCache, dy: Array, name: str) -> None:
    """Backward's checks one by one (its slow path): the cache, the params and ``dy``."""
    if not isinstance(cache, ElementwiseCache) or cache.kind != name:
        wrong_cache(cache, f"ElementwiseCache of {name}", name)
    check_no_params(params, name)
    check_dy(dy, cache.x.shape, cache.x.dtype, name)


def elementwise(name: str, value: ElementwiseValue, grad: ElementwiseGrad) -> Layer[ElementwiseCache]:
    """A parameter-free layer applying ``value`` elementwise, with ``grad`` as its backward.

    ``value`` and ``grad`` must be module-level functions (or ``functools.partial`` of them) so the
    layer pickles.
    """
    return build(
        name, keeps_shape, partial(_forward, value=value, name=name), partial(_backward, grad=grad, name=name)
    )
