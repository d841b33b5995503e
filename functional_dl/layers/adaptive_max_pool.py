"""Max pooling to a fixed output size: ``global_max_pool``, ``adaptive_max_pool1d/2d``.

``adaptive_max_pool1d(o)`` and ``adaptive_max_pool2d((oh, ow))`` take the maximum over PyTorch's
adaptive bins (:mod:`functional_dl.layers._adaptive_bins`; output ``i`` along an axis of length
``n`` covers ``floor(i n / o)`` to ``ceil((i + 1) n / o)``, exclusive), as
``torch.nn.AdaptiveMaxPool1d/2d``; ``global_max_pool`` takes it over every spatial position,
``(N, C, *S) -> (N, C)``, which is ``AdaptiveMaxPool*d(1)`` flattened::

    y[n, c, i, j] = max over (h, w) in bin_i x bin_j of x[n, c, h, w]
    dx[n, c, h, w] = sum of dy[n, c, i, j] over the outputs (i, j) that chose (h, w)

The chosen entry is PyTorch's: scanning a bin in row-major order, only a strictly larger value or
a NaN replaces the running maximum, so ties send the gradient to the *first* maximum and a bin
holding NaNs outputs NaN and chooses its *last* NaN. Bins can overlap (and, with an output larger
than the input, share entries), so one input can be chosen by several outputs, and its gradient
is the sum of theirs.

The maximum over a 2-D bin is the maximum over its rows of the maxima within each row, so the
axes are reduced one at a time, last axis first (as in :mod:`functional_dl.layers._max_tiles`).
Along an axis the bins are gathered into one array ``(..., o, k, ...)`` (a reshape when
``o`` divides ``n``, else a ``take`` of :func:`~functional_dl.layers._adaptive_bins.bin_taps`),
whose ``argmax`` over the ``k`` taps is the first maximum. Taking the first maximum within each
row, then the first row attaining the bin's maximum, chooses exactly the first maximum in
row-major order; with NaNs, the last row holding one and its last NaN is the last NaN in
row-major order. Backward is one ``bincount`` of ``dy`` on the chosen entries' flat indices,
which sums the gradients of entries chosen more than once.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import check_cache, check_dy, check_no_params, refuse_forward_keywords, wrong_cache
from functional_dl.layers._adaptive_bins import (
    OutputSize,
    adaptive_layer,
    bin_taps,
    check_global_input,
    check_input,
    global_shapes,
)
from functional_dl.layers._builder import build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params

__all__ = ["MaxPickCache", "adaptive_max_pool1d", "adaptive_max_pool2d", "global_max_pool"]

Picks = npt.NDArray[np.intp]


class MaxPickCache(NamedTuple):
    """What the adaptive and global max poolings' backward needs."""

    in_shape: tuple[int, ...]  # (N, C, *S)
    # (N, C, *Out): the flat index into S of the entry each output chose
    picks: Picks
    dtype: np.dtype[Any]  # the input's, which dy must have
    kind: str  # the layer that made it (the three max poolings share this type)


def _bins(v: Array, axis: int, n_out: int) -> Array:
    """The bins of ``axis`` (length ``n``) gathered as ``(..., n_out, k, ...)`` in its place."""
    n = v.shape[axis]
    if n % n_out == 0:  # equal, disjoint bins: a reshape (a view when v is contiguous)
        return v.reshape(*v.shape[:axis], n_out, n // n_out, *v.shape[axis + 1 :])
    return np.take(v, bin_taps(n, n_out), axis=axis)


def _first_max_or_last_nan(bins: Array, axis: int) -> tuple[Array, Picks]:
    """Over the tap axis ``axis + 1`` of gathered bins: the maximum and the tap PyTorch chooses."""
    tap = np.argmax(bins, axis=axis + 1, keepdims=True)  # the first maximum, or the first NaN
    best = np.take_along_axis(bins, tap, axis=axis + 1)
    nan = np.isnan(best)
    if nan.any():  # PyTorch keeps replacing the maximum by each NaN it meets: the last NaN wins
        k = bins.shape[axis + 1]
        last_nan = k - 1 - np.argmax(np.flip(np.isnan(bins), axis=axis + 1), axis=axis + 1, keepdims=True)
        tap = np.where(nan, last_nan, tap)
    return best.squeeze(axis + 1), tap.squeeze(axis + 1)


def _pick_along(v: Array, axis: int, n_out: int) -> tuple[Array, Picks]:
    """The maximum over each bin of ``axis`` and the position along ``axis`` that attains it."""
    best, tap = _first_max_or_last_nan(_bins(v, axis, n_out), axis)
    taps = bin_taps(v.shape[axis], n_out)
    trailing = (1,) * (v.ndim - axis - 1)
    # A last NaN may be the repeat of a bin's last entry that fills its row of taps: clip to that entry.
    pos: Picks = np.minimum(
        taps[:, :1].reshape(n_out, *trailing) + tap, taps[:, -1:].reshape(n_out, *trailing)
    )
    return best, pos


def _max_and_picks(x: Array, out: tuple[int, ...]) -> tuple[Array, Picks]:
    """``y (N, C, *out)`` and each output's chosen flat index into the spatial axes of ``x``."""
    spatial = x.shape[2:]
    y, picks = _pick_along(x, x.ndim - 1, out[-1])
    for axis in range(x.ndim - 2, 1, -1):
        y, rows = _pick_along(y, axis, out[axis - 2])
        # the entries already chosen in the rows just picked, offset by those rows
        picks = rows * math.prod(spatial[axis - 1 :]) + np.take_along_axis(picks, rows, axis=axis)
    return y, picks


def _route(picks: Picks, dy: Array, in_shape: tuple[int, ...]) -> Array:
    """``dx``: ``dy`` summed onto the chosen entries (``bincount`` accumulates repeated picks)."""
    lead = math.prod(in_shape[:2])
    per_map = math.prod(in_shape[2:])
    flat = picks.reshape(lead, math.prod(picks.shape[2:])) + (np.arange(lead) * per_map)[:, None]
    dx = np.bincount(flat.ravel(), weights=dy.ravel(), minlength=lead * per_map)
    return dx.astype(dy.dtype, copy=False).reshape(in_shape)


def _adaptive_forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    size: tuple[int | None, ...],
    name: str,
    **slips: object,
) -> tuple[Array, MaxPickCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    y, picks = _max_and_picks(x, check_input(params, x, size, name))
    return y, MaxPickCache(x.shape, picks, x.dtype, name)


def _check_cache(params: Params, cache: MaxPickCache, name: str) -> None:
    """Backward's own checks: no params, and a cache that a forward of this layer made."""
    check_cache(cache, MaxPickCache, name)
    if cache.kind != name:
        wrong_cache(cache, f"MaxPickCache of {name}", name)
    check_no_params(params, name)


def _adaptive_backward(
    params: Params, cache: MaxPickCache, dy: Array, /, *, size: tuple[int | None, ...], name: str
) -> tuple[Array, Params]:
    _check_cache(params, cache, name)
    check_dy(dy, cache.picks.shape, cache.dtype, name)
    return _route(cache.picks, dy, cache.in_shape), EMPTY


def adaptive_max_pool1d(output_size: int | tuple[int | None] | None) -> Layer[MaxPickCache]:
    """Max pooling of ``(N, C, L)`` to a fixed length ``o``, as ``torch.nn.AdaptiveMaxPool1d``.

    Args:
        output_size: ``o``, a positive int (or a 1-tuple), larger than ``L`` too; ``None`` keeps
            the length, which PyTorch's 1-D module refuses but its 2-D one accepts per axis.

    Raises:
        DomainError: ``output_size`` is not a positive int or ``None``.

    In the example the bins of a length-4 input are ``{0, 1}``, ``{1, 2}`` and ``{2, 3}``: the
    ``3.0`` at position 1 is the maximum of two bins and gets both gradients.

    Example:
        >>> import numpy as np
        >>> layer = adaptive_max_pool1d(3)
        >>> y, cache = layer.forward({}, np.array([[[1.0, 3.0, 0.0, 2.0]]]))
        >>> y.tolist()
        [[[3.0, 3.0, 2.0]]]
        >>> layer.backward({}, cache, np.ones_like(y))[0].tolist()
        [[[0.0, 2.0, 0.0, 1.0]]]
    """
    return adaptive_layer("adaptive_max_pool1d", 1, output_size, _adaptive_forward, _adaptive_backward)


def adaptive_max_pool2d(output_size: OutputSize) -> Layer[MaxPickCache]:
    """Max pooling of ``(N, C, H, W)`` to a fixed ``(oh, ow)``, as ``torch.nn.AdaptiveMaxPool2d``.

    Ties send the gradient to the first maximum of the bin in row-major order, and a bin holding
    NaNs outputs NaN, choosing its last NaN (PyTorch's rules; module docstring).

    Args:
        output_size: an int (square output) or ``(oh, ow)``, larger than the input too; ``None``
            keeps that input size.

    Raises:
        DomainError: ``output_size`` is not positive ints or ``None``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 5.0, 2.0], [5.0, 0.0, 3.0]]]])
        >>> layer = adaptive_max_pool2d((1, 2))  # column bins {0, 1} and {1, 2}
        >>> y, cache = layer.forward({}, x)
        >>> y.tolist()
        [[[[5.0, 5.0]]]]
        >>> layer.backward({}, cache, np.ones_like(y))[0].tolist()  # the first 5.0 of both bins
        [[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]]
    """
    return adaptive_layer("adaptive_max_pool2d", 2, output_size, _adaptive_forward, _adaptive_backward)


def _global_forward(
    params: Params, x: Array, ctx: Context = EVAL, /, **slips: object
) -> tuple[Array, MaxPickCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("global_max_pool", slips)
    check_global_input(params, x, "global_max_pool")
    per_map = math.prod(x.shape[2:])
    # One bin over the flattened spatial axes: row-major order is the order of the flat index.
    best, picks = _first_max_or_last_nan(x.reshape(*x.shape[:2], 1, per_map), 2)
    return best.reshape(x.shape[:2]), MaxPickCache(
        x.shape, picks.reshape(x.shape[:2]), x.dtype, "global_max_pool"
    )


def _global_backward(params: Params, cache: MaxPickCache, dy: Array, /) -> tuple[Array, Params]:
    _check_cache(params, cache, "global_max_pool")
    check_dy(dy, cache.picks.shape, cache.dtype, "global_max_pool")
    return _route(cache.picks, dy, cache.in_shape), EMPTY


def global_max_pool() -> Layer[MaxPickCache]:
    """Maximum over all spatial axes: ``(N, C, *S) -> (N, C)`` (1-D, 2-D or more).

    The gradient goes to the first maximum in row-major order (to the last NaN if there is one),
    as with ``torch.nn.AdaptiveMaxPool2d(1)``; ``torch.amax`` would instead share it among ties.

    Example:
        >>> import numpy as np
        >>> layer = global_max_pool()
        >>> y, cache = layer.forward({}, np.array([[[[1.0, 4.0], [4.0, 2.0]]]]))
        >>> y.tolist()
        [[4.0]]
        >>> layer.backward({}, cache, np.ones_like(y))[0].tolist()
        [[[[0.0, 1.0], [0.0, 0.0]]]]
    """
    shapes = partial(global_shapes, name="global_max_pool")
    return build("global_max_pool", shapes, _global_forward, _global_backward)
