"""The one way to build a layer: declare its arrays, write forward and backward, call :func:`build`.

A layer module provides three module-level functions and hands them to :func:`build`:

* ``shapes(in_shape) -> (out_shape, specs)``: shape inference, and a declaration of every array the
  layer owns: ``{"w": ArraySpec((n_out, n_in), w_init), ...}``. This is the one place where a
  layer states its parameters' (and buffers') names, shapes and initializers; the dtype is the
  layer's ``dtype``. It raises the library's errors for an input shape it cannot take.
* ``forward(params, x, ctx=EVAL, **slips) -> (y, cache)`` and ``backward(params, cache, dy) -> (dx, grads)``;
  ``forward`` refuses keywords (``**slips``, rule 7 of :mod:`functional_dl._checks`).

The builder makes ``init`` from the declaration: trained arrays get the keys
``split(key, n)[0], [1], ...`` in declaration order (a key's children do not depend on ``n``, so
declaring a bias or not leaves the weight's numbers alone), buffers take no key of their own
(their initializers are constants), and
everything is returned read-only (:func:`functional_dl.params.adopt`). Hyperparameters passed as
keywords to :func:`build` are bound with ``functools.partial`` into *all* of ``shapes``,
``forward``, ``backward`` (and ``backward_params``), so each layer function takes the layer's
hyperparameters as keyword-only arguments; arguments only one function needs are bound with
``partial`` by the caller (without hyperparameters the functions are used as they are, so a
parameter-free layer's ``forward`` is called with no ``partial`` in between). The result is a
plain :class:`~functional_dl.types.Layer` of module-level functions and partials: picklable, with
no closure and no per-call cost beyond the ``partial`` call the functions would need anyway.

Checks: ``build`` refuses a ``dtype`` that is not floating, and ``init`` refuses a key that is not
a :class:`~functional_dl.types.Key` and a malformed ``in_shape`` (an int, a list, negative, zero,
float or bool sizes; a nested shape for a layer that takes one array), for every layer, before the
layer's ``shapes`` sees it. ``forward`` and ``backward`` are the layer's own functions, unwrapped:
they check their inputs themselves, by the rules of :mod:`functional_dl._checks` (a validating
wrapper would add a Python call to every layer call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from functional_dl.errors import ShapeError
from functional_dl.initializers import Initializer
from functional_dl.layers._args import float_dtype
from functional_dl.params import adopt
from functional_dl.random import check_key, split
from functional_dl.types import EMPTY, Array, Buffers, BuffersOfFn, Key, Layer, Params, Shape, no_buffers

__all__ = [
    "EMPTY_SPECS",
    "ArraySpec",
    "ArraySpecs",
    "ShapesFn",
    "build",
    "check_in_shape",
    "keeps_shape",
    "weight_and_bias",
]

C = TypeVar("C")


class ArraySpec(NamedTuple):
    """One array a layer owns: its shape, how to initialise it, and whether it is a buffer."""

    shape: tuple[int, ...]
    init: Initializer  # (key, shape, dtype) -> array; buffers get a key they should ignore
    buffer: bool = False  # a non-trained array (running statistics), kept out of the params


#: A layer's arrays by name, in the order their keys are split off.
ArraySpecs: TypeAlias = Mapping[str, ArraySpec]


class ShapesFn(Protocol):
    """``(in_shape) -> (out_shape, specs)``: shape inference and the declaration of a layer's arrays."""

    def __call__(self, in_shape: Shape, /) -> tuple[Shape, ArraySpecs]: ...


#: The declaration of a layer that owns no arrays.
EMPTY_SPECS: ArraySpecs = {}


def keeps_shape(in_shape: Shape, /) -> tuple[Shape, ArraySpecs]:
    """``shapes`` of a layer with no arrays whose output has its input's shape (activations)."""
    return in_shape, EMPTY_SPECS


def weight_and_bias(
    w_shape: tuple[int, ...], bias_size: int, w_init: Initializer, b_init: Initializer, *, use_bias: bool
) -> ArraySpecs:
    """``{"w": w_shape, "b": (bias_size,)}`` (no ``"b"`` without ``use_bias``): dense and convolutions."""
    specs = {"w": ArraySpec(w_shape, w_init)}
    if use_bias:
        specs["b"] = ArraySpec((bias_size,), b_init)
    return specs


def _well_formed(shape: object, nested: bool) -> bool:
    """Whether ``shape`` is a tuple of positive ints and ``None`` (and, if ``nested``, such tuples)."""
    if not isinstance(shape, tuple) or not shape:
        return False
    for d in shape:
        if d is None:
            continue
        if isinstance(d, tuple):
            if not (nested and _well_formed(d, nested)):
                return False
        elif isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            return False
    return True


def check_in_shape(in_shape: object, name: str, *, nested: bool = False) -> None:
    """Raise :class:`ShapeError` unless ``in_shape`` is well formed (see the module docstring).

    ``nested`` allows tuples of shapes (and ``None`` for an absent input), the ``init`` shape of a
    layer that takes a tuple of inputs.
    """
    if not _well_formed(in_shape, nested):
        what = "a shape, or a tuple of shapes," if nested else "a tuple of positive sizes"
        raise ShapeError(
            name,
            f"expected in_shape as {what} with None for the batch axis, such as (None, 30), got {in_shape!r}",
        )


def _init(
    key: Key,
    in_shape: Shape,
    /,
    *,
    shapes: Callable[..., tuple[Shape, ArraySpecs]],
    dtype: np.dtype[Any],
    name: str,
    tuple_input: bool,
) -> tuple[Shape, Params, Buffers]:
    check_key(key)
    check_in_shape(in_shape, name, nested=tuple_input)
    out_shape, specs = shapes(in_shape)
    if not specs:
        return out_shape, EMPTY, EMPTY
    trained = [(name, spec) for name, spec in specs.items() if not spec.buffer]
    keys = split(key, len(trained))
    params = {name: spec.init(k, spec.shape, dtype) for (name, spec), k in zip(trained, keys, strict=True)}
    buffers = {name: spec.init(key, spec.shape, dtype) for name, spec in specs.items() if spec.buffer}
    return out_shape, (adopt(params) if params else EMPTY), (adopt(buffers) if buffers else EMPTY)


def build(
    name: str,
    shapes: Callable[..., tuple[Shape, ArraySpecs]],
    forward: Callable[..., tuple[Array, C]],
    backward: Callable[..., tuple[Array, Params]],
    /,
    *,
    dtype: npt.DTypeLike = np.float32,
    backward_params: Callable[..., Params] | None = None,
    buffers_of: BuffersOfFn[C] = no_buffers,
    reads_context: bool = False,
    tuple_input: bool = False,
    **hyper: object,
) -> Layer[C]:
    """The :class:`~functional_dl.types.Layer` made of a layer module's functions.

    Args:
        name: the layer's kind, used in error messages (``"dense"``).
        shapes: ``(in_shape, **hyper) -> (out_shape, specs)``; see the module docstring.
        forward: ``(params, x, ctx=EVAL, **hyper, **slips) -> (y, cache)``; it calls
            ``refuse_forward_keywords`` when ``slips`` is not empty.
        backward: ``(params, cache, dy, **hyper) -> (dx, grads)``.
        dtype: dtype of every array in ``specs`` (float32 by default).
        backward_params: optional ``(params, cache, dy, **hyper) -> grads`` that skips ``dx``.
        buffers_of: ``(cache) -> buffers`` for a layer with buffers.
        reads_context: whether ``forward`` looks at ``ctx`` (training mode, key or buffers);
            ``False``, the default, lets combinators pass the context straight through.
        tuple_input: whether the layer takes a tuple of inputs, so ``in_shape`` may be a tuple
            of shapes (the multi-input contract of :mod:`functional_dl.types`).
        **hyper: hyperparameters bound into ``shapes``, ``forward``, ``backward`` and
            ``backward_params`` alike.

    Example:
        >>> from functional_dl.layers._builder import build, keeps_shape
        >>> def forward(params, x, ctx=None, /, *, k):
        ...     return x * k, None
        >>> def backward(params, cache, dy, /, *, k):
        ...     return dy * k, {}
        >>> def shapes(in_shape, /, *, k):
        ...     return keeps_shape(in_shape)
        >>> double = build("double", shapes, forward, backward, k=2.0)
        >>> double.forward({}, 3.0)
        (6.0, None)

    Raises:
        DTypeError: ``dtype`` is not a floating-point dtype.
    """
    layer_dtype = float_dtype(dtype, name)
    if hyper:
        shapes = partial(shapes, **hyper)
        forward = partial(forward, **hyper)
        backward = partial(backward, **hyper)
        backward_params = None if backward_params is None else partial(backward_params, **hyper)
    return Layer(
        init_with_buffers=partial(
            _init, shapes=shapes, dtype=layer_dtype, name=name, tuple_input=tuple_input
        ),
        forward=forward,
        backward=backward,
        buffers_of=buffers_of,
        name=name,
        reads_context=reads_context,
        backward_params=backward_params,
    )
