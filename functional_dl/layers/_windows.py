"""Window geometry shared by convolution and pooling: padding, output sizes, strided views.

Everything here works for any number of spatial axes (1 for ``NCL``, 2 for ``NCHW``). A window
with kernel ``k``, stride ``s`` and dilation ``d`` over a padded axis of length ``n`` has extent
``d (k - 1) + 1`` and yields

    out = floor((n - d (k - 1) - 1) / s) + 1

positions, PyTorch's rule. Kernel *offset* ``i`` of output position ``o`` reads padded index
``o s + i d``, so for a fixed offset the inputs touched by all outputs form the strided slice
``i d : i d + s (out - 1) + 1 : s`` (:func:`offset_slices`). Looping over the ``prod(kernel)``
offsets and doing whole-array work on each slice is how backward passes scatter gradients without
``np.add.at`` and without a loop over samples or pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.types import Array

__all__ = [
    "PaddingSpec",
    "Pads",
    "check_fits",
    "clip_offset",
    "crop",
    "extents",
    "offset_slices",
    "offsets",
    "out_sizes",
    "pad",
    "resolve_padding",
    "size",
    "to_tuple",
    "windows",
]

#: Padding per spatial axis as ``(before, after)`` pairs.
Pads = tuple[tuple[int, int], ...]
#: What users may pass as padding: an int, one int per axis, one ``(before, after)`` pair per axis,
#: ``"valid"`` (no padding) or ``"same"`` (output size equals input size; stride 1 only).
PaddingSpec = int | str | Sequence[int | Sequence[int]]


def _int_at_least(v: object, minimum: int) -> int | None:
    """``v`` as an ``int`` when it is an integer (not a bool) of at least ``minimum``, else ``None``."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= minimum:
        return int(v)
    return None


def to_tuple(value: int | Sequence[int], nd: int, what: str, layer: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as a tuple of ``nd`` ints, each at least ``minimum``; raises ``DomainError`` otherwise."""
    items: tuple[object, ...] = tuple(value) if isinstance(value, tuple | list) else (value,) * nd
    ints = [_int_at_least(v, minimum) for v in items]
    if len(ints) != nd or None in ints:
        raise DomainError(layer, f"{what} must be an int >= {minimum} or {nd} of them, got {value!r}")
    return tuple(i for i in ints if i is not None)


def resolve_padding(
    padding: PaddingSpec,
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    stride: tuple[int, ...],
    layer: str,
) -> Pads:
    """Normalise a padding spec to ``(before, after)`` per spatial axis.

    ``"same"`` pads ``d (k - 1)`` in total per axis, ``floor`` of half before and the rest after
    (PyTorch puts the odd element after), and needs stride 1 as in PyTorch.

    Example:
        >>> resolve_padding("same", (4, 3), (1, 2), (1, 1), "conv2d")
        ((1, 2), (2, 2))
        >>> resolve_padding((1, (0, 2)), (3, 3), (1, 1), (1, 1), "conv2d")
        ((1, 1), (0, 2))
    """
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise DomainError(
                    layer, f"padding='same' needs stride 1 (as in PyTorch), got stride {stride}"
                )
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise DomainError(layer, f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if _int_at_least(padding, 0) is not None:
        items: Sequence[object] = (padding,) * nd
    elif isinstance(padding, tuple | list) and len(padding) == nd:
        items = padding
    else:
        raise DomainError(
            layer, f"padding must be an int or {nd} entries (one per spatial axis), got {padding!r}"
        )
    pads = []
    for item in items:
        pair: tuple[object, ...] = tuple(item) if isinstance(item, tuple | list) else (item, item)
        ints = [_int_at_least(p, 0) for p in pair]
        if len(ints) != 2 or ints[0] is None or ints[1] is None:
            raise DomainError(
                layer, f"padding entries must be ints >= 0 or (before, after) pairs, got {padding!r}"
            )
        pads.append((ints[0], ints[1]))
    return tuple(pads)


def extents(kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """The span ``d (k - 1) + 1`` of a dilated kernel along each axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))


def out_sizes(
    padded: Sequence[int],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[int, ...]:
    """Output length per axis, ``floor((n - d (k - 1) - 1) / s) + 1``, for padded lengths ``n``."""
    return tuple((n - e) // s + 1 for n, e, s in zip(padded, extents(kernel, dilation), stride, strict=True))


def check_fits(
    spatial: Sequence[int | None], pads: Pads, kernel: tuple[int, ...], dilation: tuple[int, ...], layer: str
) -> None:
    """Raise :class:`ShapeError` if the dilated kernel is larger than the padded input on some axis."""
    for n, (lo, hi), e in zip(spatial, pads, extents(kernel, dilation), strict=True):
        if n is not None and n + lo + hi < e:
            padded = tuple(None if m is None else m + a + b for m, (a, b) in zip(spatial, pads, strict=True))
            raise ShapeError(
                layer,
                f"kernel of extent {describe_shape(extents(kernel, dilation))} is larger than the padded "
                f"input {describe_shape(padded)} (input {describe_shape(spatial)}, padding {pads})",
            )


def pad(x: Array, pads: Pads, value: float = 0.0) -> Array:
    """``x`` of shape ``(N, C, *S)`` padded on its spatial axes (``x`` itself when there is no padding)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    # A filled buffer and one slice assignment: several times faster than np.pad for small arrays.
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads, strict=True))
    out = np.full((*x.shape[:2], *padded), value, dtype=x.dtype)
    out[
        (slice(None), slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], pads, strict=True)))
    ] = x
    return out


def crop(xp: Array, pads: Pads) -> Array:
    """The inverse of :func:`pad`: a view of ``xp`` without its padding."""
    return xp[
        (slice(None), slice(None), *(slice(lo, xp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads)))
    ]


def windows(xp: Array, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]) -> Array:
    """A read-only strided view ``(N, C, *out, *kernel)`` of every window of ``xp`` (no copy).

    ``view[n, c, o..., i...] == xp[n, c, o s + i d ...]``.
    """
    nd = len(kernel)
    view = sliding_window_view(xp, extents(kernel, dilation), axis=tuple(range(2, 2 + nd)))
    step = (
        slice(None),
        slice(None),
        *(slice(None, None, s) for s in stride),
        *(slice(None, None, d) for d in dilation),
    )
    return view[step]


def offsets(kernel: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every kernel offset in row-major order (the order PyTorch scans a pooling window)."""
    return np.ndindex(*kernel)


def offset_slices(
    offset: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], out: tuple[int, ...]
) -> tuple[slice, ...]:
    """Spatial slices of the padded input read by kernel ``offset`` at every output position."""
    return tuple(
        slice(i * d, i * d + s * (o - 1) + 1, s)
        for i, s, d, o in zip(offset, stride, dilation, out, strict=True)
    )


def clip_offset(
    offset: tuple[int, ...],
    *,
    pads: Pads,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
    spatial: tuple[int, ...],
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """``(target, source)`` slices of kernel ``offset``: output positions landing inside the unpadded input.

    Output position ``p`` reads unpadded index ``q = p s + i d - lo``; the positions with
    ``0 <= q < n`` are ``p_0 <= p < p_1``. ``target`` is empty when none do.
    """
    targets, sources = [], []
    for i, (lo, _), s, d, o, m in zip(offset, pads, stride, dilation, out, spatial, strict=True):
        shift = i * d - lo
        first = max(0, -(shift // s))  # ceil(-shift / s)
        stop = min(o, (m - 1 - shift) // s + 1)
        if first >= stop:
            return (), ()
        start = first * s + shift
        targets.append(slice(start, start + s * (stop - first - 1) + 1, s))
        sources.append(slice(first, stop))
    return tuple(targets), tuple(sources)


def size(shape: Sequence[int]) -> int:
    """The number of elements of an array of ``shape``."""
    return math.prod(shape)
