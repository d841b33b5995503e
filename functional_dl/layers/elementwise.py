"""The machinery shared by elementwise layers (activations): one forward, one backward, one factory.

:func:`elementwise` is :func:`~functional_dl.layers._builder.build` for this family: it binds a
``value``/``grad`` pair into the shared forward and backward below.

An elementwise layer is a pair of array functions: ``value(x) -> y`` and
``grad(x, y, dy) -> dx`` (the vector-Jacobian product, which may use the input, the output or both).
It has no parameters, keeps the shape and dtype of its input, and caches ``x`` and ``y`` (references,
not copies) with the layer's kind: every activation shares the cache type, and a sigmoid's backward
given a relu's cache would otherwise compute ``dy * y (1 - y)`` with the relu's ``y``. The kind
spells the factory's options too (``"leaky_relu(negative_slope=0.2)"``), so a cache of the same
activation with other options is refused as well: its ``y`` was computed with them. Backward's
check is then one string comparison (the same string object on the good path).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Protocol

import numpy as np

from functional_dl._checks import check_dy, check_float, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.layers._builder import build, keeps_shape
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

# check_backward, kind_of and name_of serve softmax.py; the export rule keeps them out of __all__.
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
    kind: str  # the layer's name and options ("relu", "elu(alpha=0.5)"): which backward it belongs to


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, value: ElementwiseValue, kind: str, **slips: object
) -> tuple[Array, ElementwiseCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name_of(kind), slips)
    # The checks' good path as one condition (no call per check on every step of a small network);
    # otherwise the checks themselves raise the message, or let an ndarray subclass through.
    if params or type(params) is not dict or type(x) is not np.ndarray or x.dtype.kind != "f":
        check_no_params(params, name_of(kind))
        check_float(x, name_of(kind))
    y = value(x)
    return y, ElementwiseCache(x, y, kind)


def _backward(
    params: Params, cache: ElementwiseCache, dy: Array, /, *, grad: ElementwiseGrad, kind: str
) -> tuple[Array, Params]:
    if (
        type(cache) is not ElementwiseCache
        or cache.kind != kind
        or params
        or type(params) is not dict
        or type(dy) is not np.ndarray
        or dy.shape != cache.x.shape
        or dy.dtype != cache.x.dtype
    ):
        check_backward(params, cache, dy, name_of(kind), kind)
    return grad(cache.x, cache.y, dy), EMPTY


def check_backward(params: Params, cache: ElementwiseCache, dy: Array, name: str, kind: str) -> None:
    """Backward's checks one by one (its slow path): the cache (of ``kind``), the params and ``dy``."""
    if not isinstance(cache, ElementwiseCache) or cache.kind != kind:
        wrong_cache(cache, f"ElementwiseCache of {kind}", name)
    check_no_params(params, name)
    check_dy(dy, cache.x.shape, cache.x.dtype, name)


def elementwise(
    name: str, value: ElementwiseValue, grad: ElementwiseGrad, **options: float
) -> Layer[ElementwiseCache]:
    """A parameter-free layer applying ``value`` elementwise, with ``grad`` as its backward.

    ``value`` and ``grad`` must be module-level functions (or ``functools.partial`` of them) so the
    layer pickles. ``options`` are the factory's arguments that ``value`` and ``grad`` are bound
    to (``negative_slope=0.2``); they go into the caches' kind (:func:`kind_of`).
    """
    kind = kind_of(name, **options)
    return build(
        name,
        keeps_shape,
        partial(_forward, value=value, kind=kind),
        partial(_backward, grad=grad, kind=kind),
    )


def kind_of(name: str, **options: float) -> str:
    """The kind an elementwise layer's caches record: ``"relu"``, ``"elu(alpha=0.5)"``.

    Options are spelled with ``repr``, which tells every two floats apart, so two layers share a
    kind exactly when their backward computes the same function.

    Example:
        >>> kind_of("hard_tanh", min_val=-2.0, max_val=2.0)
        'hard_tanh(min_val=-2.0, max_val=2.0)'
    """
    if not options:
        return name
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in options.items())})"


def name_of(kind: str) -> str:
    """The layer's name in a kind (``"elu"`` in ``"elu(alpha=0.5)"``), for messages on the slow path.

    The forward and backward bind the kind alone: one keyword fewer in each call of a hot
    activation than binding the name beside it.
    """
    return kind.partition("(")[0]
