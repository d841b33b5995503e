"""PyTorch's adaptive bins, shared by the adaptive average and max poolings.

Pooling an axis of length ``n`` to ``o`` outputs, output ``i`` covers the input positions

    start_i = floor(i n / o)  to  end_i = ceil((i + 1) n / o)   (end exclusive)

as ``torch.nn.AdaptiveAvgPool*d`` and ``AdaptiveMaxPool*d`` choose them. Every bin is non-empty,
neighbouring bins overlap by at most one position when ``o < n``, and when ``o > n`` several bins
share one position; bins differ in length by at most one, except that an overlap can add one more.

Two views of the same bins serve the two poolings: :func:`bin_matrix`, the ``(o, n)`` averaging
matrix, and :func:`bin_taps`, the ``(o, k)`` table of the positions in each bin (``k`` the longest
bin), used to gather the bins into one array for a maximum. Both are cached per ``(n, o)`` and
read-only.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from functional_dl._checks import check_float, check_no_params, is_array, not_an_array
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.types import Array, IntArray, Layer, Params, Shape

C = TypeVar("C")

__all__ = [
    "OutputSize",
    "adaptive_layer",
    "adaptive_shapes",
    "bin_bounds",
    "bin_matrix",
    "bin_taps",
    "check_global_input",
    "check_input",
    "global_shapes",
    "output_sizes",
]

#: What a factory accepts: one size for every spatial axis, or one per axis; ``None`` keeps that axis.
OutputSize = int | Sequence[int | None] | None

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)"}


def bin_bounds(n_in: int, n_out: int) -> tuple[IntArray, IntArray]:
    """``(starts, ends)``, each ``(n_out,)``: the bins of the module docstring (ends exclusive).

    Example:
        >>> [b.tolist() for b in bin_bounds(5, 3)]
        [[0, 1, 3], [2, 4, 5]]
    """
    i = np.arange(n_out)
    starts: IntArray = (i * n_in) // n_out
    ends: IntArray = -((-(i + 1) * n_in) // n_out)  # ceil division
    return starts, ends


@lru_cache(maxsize=64)
def _bin_matrix(n_in: int, n_out: int, dtype: np.dtype[np.floating]) -> Array:
    starts, ends = bin_bounds(n_in, n_out)
    cols = np.arange(n_in)
    inside = (cols >= starts[:, None]) & (cols < ends[:, None])
    matrix: Array = (inside / (ends - starts)[:, None]).astype(dtype)
    matrix.flags.writeable = False  # shared between calls through the cache
    return matrix


def bin_matrix(n_in: int, n_out: int, dtype: np.dtype[np.floating]) -> Array:
    """The ``(n_out, n_in)`` matrix averaging PyTorch's adaptive bins (read-only, cached).

    Example:
        >>> bin_matrix(5, 3, np.dtype(np.float64)).round(3).tolist()
        [[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.333, 0.333, 0.333, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5]]
    """
    return _bin_matrix(n_in, n_out, dtype)


@lru_cache(maxsize=64)
def _bin_taps(n_in: int, n_out: int) -> npt.NDArray[np.intp]:
    starts, ends = bin_bounds(n_in, n_out)
    longest = int((ends - starts).max())
    taps: npt.NDArray[np.intp] = np.minimum(starts[:, None] + np.arange(longest), ends[:, None] - 1)
    taps.flags.writeable = False  # shared between calls through the cache
    return taps


def bin_taps(n_in: int, n_out: int) -> npt.NDArray[np.intp]:
    """The ``(n_out, k)`` input positions of each bin, ``k`` the longest bin (read-only, cached).

    A shorter bin repeats its last position to fill the row. Repeating an entry of a bin leaves its
    maximum alone, and the repeat comes after the original, so the first maximum of a row is
    always the first maximum of the bin: no ``-inf`` mask is needed.

    Example:
        >>> bin_taps(5, 3).tolist()
        [[0, 1, 1], [1, 2, 3], [3, 4, 4]]
    """
    return _bin_taps(n_in, n_out)


def output_sizes(output_size: OutputSize, nd: int, layer: str) -> tuple[int | None, ...]:
    """``output_size`` as ``nd`` entries, each a positive int or ``None``; raises ``DomainError``.

    Example:
        >>> output_sizes(3, 2, "adaptive_max_pool2d")
        (3, 3)
        >>> output_sizes((None, 2), 2, "adaptive_max_pool2d")
        (None, 2)
    """
    given: object = output_size  # checked as what a caller may pass, not as what the annotation allows
    items = (given,) * nd if given is None or isinstance(given, numbers.Integral) else given
    sizes = [_size(o) for o in items] if isinstance(items, tuple | list) and len(items) == nd else [0]
    if 0 in sizes:
        what = "a positive int or None" if nd == 1 else f"a positive int, None, or {nd} of them"
        raise DomainError(layer, f"output_size must be {what}, got {output_size!r}")
    return tuple(sizes)


def _size(value: object) -> int | None:
    """A positive int as itself, ``None`` as ``None``, anything else (bools too) as ``0``."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return 0
    return max(int(value), 0) if isinstance(value, numbers.Integral) else 0


def adaptive_shapes(
    in_shape: Shape, /, *, size: tuple[int | None, ...], name: str
) -> tuple[Shape, ArraySpecs]:
    """``(N, C, *out)`` for an input shape ``(N, C, *spatial)``; ``None`` in ``size`` keeps that axis."""
    nd = len(size)
    if len(in_shape) != nd + 2:
        raise ShapeError(name, f"expected {_LAYOUTS[nd]}, got {describe_shape(in_shape)}")
    out = (n if o is None else o for n, o in zip(in_shape[2:], size, strict=True))
    return (*in_shape[:2], *out), EMPTY_SPECS


def adaptive_layer(
    name: str,
    nd: int,
    output_size: OutputSize,
    forward: Callable[..., tuple[Array, C]],
    backward: Callable[..., tuple[Array, Params]],
) -> Layer[C]:
    """The adaptive pooling ``name`` over ``nd`` spatial axes, from its forward and backward.

    ``forward`` and ``backward`` take the keywords ``size`` (from :func:`output_sizes`) and ``name``.
    """
    size = output_sizes(output_size, nd, name)
    return build(name, adaptive_shapes, forward, backward, size=size, name=name)


def check_input(params: Params, x: Array, size: tuple[int | None, ...], layer: str) -> tuple[int, ...]:
    """Validate an adaptive pooling's forward arguments; return the spatial output size."""
    check_no_params(params, layer)
    nd = len(size)
    if not is_array(x):
        raise not_an_array(x, "the input", layer)
    if x.ndim != nd + 2:
        raise ShapeError(
            layer, f"expected a {nd + 2}-D input {_LAYOUTS[nd]}, got shape {describe_shape(x.shape)}"
        )
    check_float(x, layer)
    _check_not_empty(x, layer)
    return tuple(n if o is None else o for n, o in zip(x.shape[2:], size, strict=True))


def global_shapes(in_shape: Shape, /, *, name: str) -> tuple[Shape, ArraySpecs]:
    """``(N, C)`` for an input shape ``(N, C, *spatial)`` with at least one spatial axis."""
    if len(in_shape) < 3:
        raise ShapeError(name, f"expected (N, C, *spatial), got {describe_shape(in_shape)}")
    return in_shape[:2], EMPTY_SPECS


def check_global_input(params: Params, x: Array, layer: str) -> None:
    """Validate a global pooling's forward arguments: no params, a float ``(N, C, *spatial)``."""
    check_no_params(params, layer)
    if not is_array(x):
        raise not_an_array(x, "the input", layer)
    if x.ndim < 3:
        raise ShapeError(layer, f"expected an input (N, C, *spatial), got shape {describe_shape(x.shape)}")
    check_float(x, layer)
    _check_not_empty(x, layer)


def _check_not_empty(x: Array, layer: str) -> None:
    if 0 in x.shape[2:]:
        raise ShapeError(layer, f"expected non-empty spatial axes, got shape {describe_shape(x.shape)}")
