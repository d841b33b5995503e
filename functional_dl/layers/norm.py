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

from functional_dl._checks import NO_PARAMS, check_float, check_keys, check_same_dtype, check_same_shape
from functional_dl.errors import ShapeError, describe_shape
from functional_dl.initializers import Initializer, ones, zeros
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpec, ArraySpecs, build, or_default
from functional_dl.types import EMPTY, EVAL, Array, Context, Layer, Params, Shape

__all__ = ["NormCache", "group_norm", "layer_norm"]

_AFFINE = frozenset({"scale", "bias"})


class NormCache(NamedTuple):
    """What backward needs from forward."""

    xhat: Array  # shape of x: the normalised input
    inv_std: Array  # (N, G, 1) for group norm, (*lead, 1) for layer norm: 1 / sqrt(var + eps)


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


def _positive(eps: float, name: str) -> float:
    if not eps > 0:
        raise ValueError(f"{name}: eps must be positive, got {eps!r}")
    return float(eps)


def _affine_shapes(
    shapes: Callable[..., tuple[Shape, ArraySpecs]],
    scale_init: Initializer | None,
    bias_init: Initializer | None,
) -> partial[tuple[Shape, ArraySpecs]]:
    """``shapes`` with its initializers bound: ones for ``scale`` and zeros for ``bias`` by default."""
    return partial(
        shapes, scale_init=or_default(scale_init, ones()), bias_init=or_default(bias_init, zeros())
    )


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
    params: Params, x: Array, ctx: Context = EVAL, /, *, n_axes: int, affine: bool, eps: float
) -> tuple[Array, NormCache]:
    check_keys(params, _AFFINE if affine else NO_PARAMS, "layer_norm")
    check_float(x, "layer_norm")
    if affine:
        scale = params["scale"]
        if x.ndim <= n_axes or x.shape[x.ndim - n_axes :] != scale.shape:
            raise ShapeError(
                "layer_norm",
                f"expected input of shape (batch, ..., {', '.join(map(str, scale.shape))}), "
                f"got {describe_shape(x.shape)}",
            )
        check_same_dtype(x, scale, "layer_norm")
    elif x.ndim <= n_axes:
        raise ShapeError("layer_norm", f"expected more than {n_axes} axes, got {describe_shape(x.shape)}")
    lead = x.shape[: x.ndim - n_axes]
    xhat, inv_std = _normalize(x.reshape((*lead, -1)), eps)
    xhat = xhat.reshape(x.shape)
    y = xhat * params["scale"] + params["bias"] if affine else xhat
    return y, NormCache(xhat, inv_std)


def _layer_norm_backward(
    params: Params, cache: NormCache, dy: Array, /, *, n_axes: int, affine: bool
) -> tuple[Array, Params]:
    xhat = cache.xhat
    check_same_shape(dy, xhat.shape, "layer_norm")
    g = dy * params["scale"] if affine else dy
    lead = xhat.shape[: xhat.ndim - n_axes]
    dx = _normalize_backward(g.reshape((*lead, -1)), xhat.reshape((*lead, -1)), cache.inv_std).reshape(
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
    if not isinstance(n_axes, int) or n_axes < 1:
        raise ValueError(f"layer_norm: n_axes must be a positive int, got {n_axes!r}")
    shapes = _affine_shapes(_layer_norm_shapes, scale_init, bias_init)
    forward = partial(_layer_norm_forward, eps=_positive(eps, "layer_norm"))
    return build(
        "layer_norm", shapes, forward, _layer_norm_backward, dtype=dtype, n_axes=n_axes, affine=affine
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
    params: Params, x: Array, ctx: Context = EVAL, /, *, groups: int, affine: bool, eps: float
) -> tuple[Array, NormCache]:
    check_keys(params, _AFFINE if affine else NO_PARAMS, "group_norm")
    check_float(x, "group_norm")
    if x.ndim < 2 or x.shape[1] % groups or (affine and x.shape[1] != params["scale"].shape[0]):
        want = (
            f"(N, {params['scale'].shape[0]}, ...)" if affine else f"(N, C, ...) with C divisible by {groups}"
        )
        raise ShapeError("group_norm", f"expected input of shape {want}, got {describe_shape(x.shape)}")
    if affine:
        check_same_dtype(x, params["scale"], "group_norm")
    if x.size and x.size // (x.shape[0] * groups) < 2:
        # As PyTorch: a group of one value normalises to 0 whatever it holds.
        raise ShapeError(
            "group_norm", f"each group needs more than one value, got input {describe_shape(x.shape)}"
        )
    xhat, inv_std = _normalize(x.reshape((x.shape[0], groups, -1)), eps)
    xhat = xhat.reshape(x.shape)
    if not affine:
        return xhat, NormCache(xhat, inv_std)
    return xhat * _channel(params["scale"], x.ndim) + _channel(params["bias"], x.ndim), NormCache(
        xhat, inv_std
    )


def _group_norm_backward(
    params: Params, cache: NormCache, dy: Array, /, *, groups: int, affine: bool
) -> tuple[Array, Params]:
    xhat = cache.xhat
    check_same_shape(dy, xhat.shape, "group_norm")
    g = dy * _channel(params["scale"], dy.ndim) if affine else dy
    grouped = (xhat.shape[0], groups, -1)
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
    if not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"group_norm: num_groups must be a positive int, got {num_groups!r}")
    shapes = _affine_shapes(_group_norm_shapes, scale_init, bias_init)
    forward = partial(_group_norm_forward, eps=_positive(eps, "group_norm"))
    return build(
        "group_norm", shapes, forward, _group_norm_backward, dtype=dtype, groups=num_groups, affine=affine
    )
