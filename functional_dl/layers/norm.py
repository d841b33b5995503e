"""Per-sample normalisation: ``layer_norm`` (``torch.nn.LayerNorm``) and ``group_norm`` (``nn.GroupNorm``).

Both normalise groups of entries *within each sample* (no batch statistics, so train and eval
modes are the same and there is no state), then apply a learned affine map. For a group ``G`` of
``m`` entries with mean ``mu`` and biased variance ``var``::

    xhat = (x - mu) / sqrt(var + eps)        y = scale * xhat + bias
    dxhat = dy * scale
    dx = (dxhat - mean_G(dxhat) - xhat * mean_G(dxhat * xhat)) / sqrt(var + eps)
    dscale = sum over samples (and positions) of dy * xhat      dbias = likewise of dy

* ``layer_norm(n_axes)``: a group is the last ``n_axes`` axes of a sample; ``scale`` and ``bias``
  have those axes' shape (PyTorch's ``normalized_shape``, inferred at ``init``).
* ``group_norm(num_groups)``: inputs ``(N, C, *spatial)``; the ``C`` channels are split into
  ``num_groups`` consecutive groups, each normalised over its channels and all positions;
  ``scale`` and ``bias`` are per channel, ``(C,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    NO_PARAMS,
    check_cache,
    check_dy,
    check_float,
    check_keys,
    check_param,
    check_same_dtype,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.initializers import Initializer, ones, zeros
from functional_dl.layers._args import flag, initializer, positive_int, real
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpec, ArraySpecs, build
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["NormCache", "group_norm", "layer_norm"]

_AFFINE = frozenset({"scale", "bias"})


class NormCache(NamedTuple):
    """What backward needs from forward."""

    xhat: Array  # shape of x: the normalised input
    inv_std: Array  # (N, G, 1) for group norm, (*lead, 1) for layer norm: 1 / sqrt(var + eps)
    kind: str  # "layer_norm" or "group_norm": which backward this cache belongs to


def _normalize(v: Array, eps: float) -> tuple[Array, Array]:
    """``(xhat, inv_std)`` normalising ``v`` over its last axis (the group's entries)."""
    mean = v.mean(axis=-1, keepdims=True)
    centered = v - mean
    inv_std = 1.0 / np.sqrt(np.mean(centered * centered, axis=-1, keepdims=True) + eps)
    centered *= inv_std  # centered is our own fresh array
    return centered, inv_std


def _normalize_backward(g: Array, xhat: Array, inv_std: Array) -> Array:
    """``dx`` from ``dxhat = g`` for :func:`_normalize` over the last axis."""
    mean_g = g.mean(axis=-1, keepdims=True)
    mean_gx = np.mean(g * xhat, axis=-1, keepdims=True)
    out: Array = (g - mean_g - xhat * mean_gx) * inv_std
    return out


def _affine(
    shape: tuple[int, ...], scale_init: Initializer, bias_init: Initializer, *, affine: bool
) -> ArraySpecs:
    """The ``scale`` and ``bias`` params, both of ``shape`` (none without ``affine``)."""
    if not affine:
        return EMPTY_SPECS
    return {"scale": ArraySpec(shape, scale_init), "bias": ArraySpec(shape, bias_init)}


def _positive(eps: object, name: str) -> float:
    value = real(eps, "eps", name)
    if not value > 0:
        raise DomainError(name, f"eps must be positive, got {eps!r}")
    return value


def _affine_shapes(
    shapes: Callable[..., tuple[Shape, ArraySpecs]],
    scale_init: Initializer | None,
    bias_init: Initializer | None,
    name: str,
) -> partial[tuple[Shape, ArraySpecs]]:
    """``shapes`` with its initializers bound: ones for ``scale`` and zeros for ``bias`` by default."""
    return partial(
        shapes,
        scale_init=initializer(scale_init, ones(), "scale_init", name),
        bias_init=initializer(bias_init, zeros(), "bias_init", name),
    )


def _affine_params(params: Params, shape: tuple[int, ...], name: str, affine: bool) -> Array | None:
    """``scale`` (``bias`` checked too) of ``shape``; ``None`` without ``affine``."""
    check_keys(params, _AFFINE if affine else NO_PARAMS, name)
    if not affine:
        return None
    scale = check_param(params, "scale", shape, name)
    check_param(params, "bias", shape, name, scale.dtype)
    return scale


def _checked_cache(cache: NormCache, inv_std_shape: tuple[int, ...], name: str) -> None:
    """Refuse a norm cache this layer's forward did not make (another kind, or another grouping)."""
    if cache.kind != name or cache.inv_std.shape != inv_std_shape:
        wrong_cache(cache, f"NormCache of this {name}", name)


# layer norm ------------------------------------------------------------------------------------


def _layer_norm_shapes(
    in_shape: Shape, /, *, n_axes: int, affine: bool, scale_init: Initializer, bias_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    normalized = in_shape[len(in_shape) - n_axes :]
    if len(in_shape) < n_axes + 1 or any(d is None for d in normalized):
        raise ShapeError(
            "layer_norm", f"needs {n_axes} known axes after the batch axis, got {describe_shape(in_shape)}"
        )
    shape = tuple(d for d in normalized if d is not None)
    return in_shape, _affine(shape, scale_init, bias_init, affine=affine)


def _layer_norm_forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    n_axes: int,
    affine: bool,
    eps: float,
    **slips: object,
) -> tuple[Array, NormCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("layer_norm", slips)
    check_float(x, "layer_norm")
    if x.ndim <= n_axes:
        raise ShapeError("layer_norm", f"expected more than {n_axes} axes, got {describe_shape(x.shape)}")
    normalized = x.shape[x.ndim - n_axes :]
    try:
        scale = _affine_params(params, normalized, "layer_norm", affine)
    except ShapeError:
        found = params["scale"]
        if found.shape == getattr(params["bias"], "shape", None):  # fine params: the input does not fit
            raise ShapeError(
                "layer_norm",
                f"expected input of shape (batch, ..., {', '.join(map(str, found.shape))}), "
                f"got {describe_shape(x.shape)}",
            ) from None
        raise
    if scale is not None:
        check_same_dtype(x, scale, "layer_norm")
    lead = x.shape[: x.ndim - n_axes]
    xhat, inv_std = _normalize(x.reshape((*lead, _size(normalized))), eps)
    xhat = xhat.reshape(x.shape)
    y = xhat * params["scale"] + params["bias"] if affine else xhat
    return y, NormCache(xhat, inv_std, "layer_norm")


def _size(shape: tuple[int, ...]) -> int:
    """The number of entries of an array of ``shape`` (a reshape with ``-1`` fails on an empty batch)."""
    n = 1
    for d in shape:
        n *= d
    return n


def _layer_norm_backward(
    params: Params, cache: NormCache, dy: Array, /, *, n_axes: int, affine: bool
) -> tuple[Array, Params]:
    check_cache(cache, NormCache, "layer_norm")
    xhat = cache.xhat
    lead = xhat.shape[: xhat.ndim - n_axes]
    _checked_cache(cache, (*lead, 1), "layer_norm")
    _affine_params(params, xhat.shape[xhat.ndim - n_axes :], "layer_norm", affine)
    check_dy(dy, xhat.shape, xhat.dtype, "layer_norm")
    g = dy * params["scale"] if affine else dy
    group = _size(xhat.shape[xhat.ndim - n_axes :])
    dx = _normalize_backward(g.reshape((*lead, group)), xhat.reshape((*lead, group)), cache.inv_std).reshape(
        xhat.shape
    )
    if not affine:
        return dx, EMPTY
    outer = tuple(range(len(lead)))
    return dx, {"scale": (dy * xhat).sum(axis=outer), "bias": dy.sum(axis=outer)}


def layer_norm(
    n_axes: int = 1,
    *,
    eps: float = 1e-5,
    affine: bool = True,
    scale_init: Initializer | None = None,
    bias_init: Initializer | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[NormCache]:
    """Layer normalisation over the last ``n_axes`` axes (``nn.LayerNorm(x.shape[-n_axes:])``).

    Args:
        n_axes: how many trailing axes form one normalisation group (1: the features).
        eps: added to the variance before the square root.
        affine: learn ``scale`` (init ones) and ``bias`` (init zeros) of the normalised shape.
        scale_init: initializer for ``scale`` (default ones).
        bias_init: initializer for ``bias`` (default zeros).
        dtype: dtype of the params.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> ln = layer_norm()
        >>> _, params = ln.init(random.key(0), (None, 4))
        >>> y, _ = ln.forward(params, np.array([[1.0, 2.0, 3.0, 4.0]], np.float32))
        >>> y.round(4).tolist()
        [[-1.3416, -0.4472, 0.4472, 1.3416]]
    """
    shapes = _affine_shapes(_layer_norm_shapes, scale_init, bias_init, "layer_norm")
    forward = partial(_layer_norm_forward, eps=_positive(eps, "layer_norm"))
    return build(
        "layer_norm",
        shapes,
        forward,
        _layer_norm_backward,
        dtype=dtype,
        n_axes=positive_int(n_axes, "n_axes", "layer_norm"),
        affine=flag(affine, "affine", "layer_norm"),
    )


# group norm ------------------------------------------------------------------------------------


def _group_norm_shapes(
    in_shape: Shape, /, *, groups: int, affine: bool, scale_init: Initializer, bias_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    if len(in_shape) < 2 or in_shape[1] is None:
        raise ShapeError("group_norm", f"expected an input shape (N, C, ...), got {describe_shape(in_shape)}")
    c = in_shape[1]
    if c % groups:
        raise ShapeError("group_norm", f"{c} channels cannot be split into {groups} groups")
    return in_shape, _affine((c,), scale_init, bias_init, affine=affine)


def _channel(v: Array, ndim: int) -> Array:
    return v.reshape(v.shape + (1,) * (ndim - 2))


def _group_norm_forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    groups: int,
    affine: bool,
    eps: float,
    **slips: object,
) -> tuple[Array, NormCache]:
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords("group_norm", slips)
    check_float(x, "group_norm")
    if x.ndim < 2 or x.shape[1] % groups:
        raise ShapeError(
            "group_norm",
            f"expected input of shape (N, C, ...), C divisible by {groups}, got {describe_shape(x.shape)}",
        )
    try:
        scale = _affine_params(params, (x.shape[1],), "group_norm", affine)
    except ShapeError:
        found = params["scale"]
        if found.ndim == 1 and found.shape == getattr(
            params["bias"], "shape", None
        ):  # the input does not fit
            raise ShapeError(
                "group_norm",
                f"expected input of shape (N, {found.shape[0]}, ...), got {describe_shape(x.shape)}",
            ) from None
        raise
    if scale is not None:
        check_same_dtype(x, scale, "group_norm")
    per_group = _size(x.shape[1:]) // groups
    if x.size and per_group < 2:
        # As PyTorch: a group of one value normalises to 0 whatever it holds.
        raise ShapeError(
            "group_norm", f"each group needs more than one value, got input {describe_shape(x.shape)}"
        )
    xhat, inv_std = _normalize(x.reshape((x.shape[0], groups, per_group)), eps)
    xhat = xhat.reshape(x.shape)
    cache = NormCache(xhat, inv_std, "group_norm")
    if not affine:
        return xhat, cache
    return xhat * _channel(params["scale"], x.ndim) + _channel(params["bias"], x.ndim), cache


def _group_norm_backward(
    params: Params, cache: NormCache, dy: Array, /, *, groups: int, affine: bool
) -> tuple[Array, Params]:
    check_cache(cache, NormCache, "group_norm")
    xhat = cache.xhat
    _checked_cache(cache, (xhat.shape[0], groups, 1), "group_norm")
    _affine_params(params, xhat.shape[1:2], "group_norm", affine)
    check_dy(dy, xhat.shape, xhat.dtype, "group_norm")
    g = dy * _channel(params["scale"], dy.ndim) if affine else dy
    grouped = (xhat.shape[0], groups, _size(xhat.shape[1:]) // groups)
    dx = _normalize_backward(g.reshape(grouped), xhat.reshape(grouped), cache.inv_std).reshape(xhat.shape)
    if not affine:
        return dx, EMPTY
    axes = (0, *range(2, dy.ndim))
    return dx, {"scale": (dy * xhat).sum(axis=axes), "bias": dy.sum(axis=axes)}


def group_norm(
    num_groups: int,
    *,
    eps: float = 1e-5,
    affine: bool = True,
    scale_init: Initializer | None = None,
    bias_init: Initializer | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[NormCache]:
    """Group normalisation of ``(N, C, *spatial)`` inputs in ``num_groups`` channel groups.

    ``group_norm(1)`` normalises each sample over everything (like a layer norm over ``(C, ...)``
    with per-channel affine), ``group_norm(C)`` each channel separately (instance norm).

    Args:
        num_groups: how many groups to split the channels into; must divide ``C``.
        eps: added to the variance before the square root.
        affine: learn per-channel ``scale`` (init ones) and ``bias`` (init zeros), ``(C,)``.
        scale_init: initializer for ``scale`` (default ones).
        bias_init: initializer for ``bias`` (default zeros).
        dtype: dtype of the params.
    """
    shapes = _affine_shapes(_group_norm_shapes, scale_init, bias_init, "group_norm")
    forward = partial(_group_norm_forward, eps=_positive(eps, "group_norm"))
    return build(
        "group_norm",
        shapes,
        forward,
        _group_norm_backward,
        dtype=dtype,
        groups=positive_int(num_groups, "num_groups", "group_norm"),
        affine=flag(affine, "affine", "group_norm"),
    )
