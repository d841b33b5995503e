"""Batch normalisation over the channel axis 1, with running statistics as explicit buffers.

Inputs are ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` (PyTorch's ``BatchNorm1d``/``BatchNorm2d``
layouts). Statistics are per channel ``c``, over the ``n = N * L`` (or ``N * H * W``) entries of
that channel. Params are ``scale`` and ``bias`` of shape ``(C,)`` (PyTorch's ``weight`` and
``bias``); the buffers hold ``running_mean`` and ``running_var`` of shape ``(C,)`` (same names as in
a PyTorch ``state_dict``), created by ``init_with_buffers`` and never seen by an optimizer.

Training (``ctx.train``), with ``mu``, ``var`` the batch mean and *biased* variance::

    xhat = (x - mu) / sqrt(var + eps)          y = scale * xhat + bias
    running_mean' = (1 - m) running_mean + m mu
    running_var'  = (1 - m) running_var  + m var * n / (n - 1)      (unbiased, as PyTorch)

and the new buffers are ``layer.buffers_of(cache)``. Backward, with ``g = dy * scale``::

    dbias = sum(dy)     dscale = sum(dy * xhat)
    dx = scale / (n sqrt(var + eps)) * (n dy - dbias - xhat dscale)

Evaluation uses the running statistics instead (``xhat = (x - running_mean) /
sqrt(running_var + eps)``), so ``dx = dy * scale / sqrt(running_var + eps)``; ``buffers_of`` returns the
buffers unchanged. ``m`` is PyTorch's ``momentum`` (0.1 by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import NamedTuple, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    NO_PARAMS,
    check_dy,
    check_float,
    check_keys,
    check_param,
    check_same_dtype,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, ParamsError, ShapeError, describe_shape
from functional_dl.initializers import Initializer, ones, zeros
from functional_dl.layers._args import check_options, flag, float_dtype, initializer, real
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.params import adopt
from functional_dl.types import EMPTY, EVAL, Array, Buffers, Context, Layer, Params, Shape

__all__ = ["BatchNormCache", "BatchNormOptions", "batch_norm", "batch_norm1d", "batch_norm2d"]

_AFFINE = frozenset({"scale", "bias"})
_BUFFER_KEYS = frozenset({"running_mean", "running_var"})


class BatchNormCache(NamedTuple):
    """What backward (and ``buffers_of``) need from forward."""

    xhat: Array  # shape of x: the normalised input
    inv_std: Array  # (C,): 1 / sqrt(var + eps), batch or running variance
    train: bool  # whether batch statistics were used
    buffers: Buffers  # running statistics after this call (unchanged in evaluation)
    kind: str  # the layer's name ("batch_norm1d"): which backward this cache belongs to


def _check_rank(ndim: int, ranks: tuple[int, ...], name: str, shape: Shape) -> None:
    if ndim not in ranks:
        layouts = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)"}
        want = " or ".join(layouts.get(r, f"rank {r}") for r in ranks)
        raise ShapeError(name, f"expected input of shape {want}, got {describe_shape(shape)}")


def _shapes(
    in_shape: Shape,
    /,
    *,
    ranks: tuple[int, ...],
    name: str,
    affine: bool,
    scale_init: Initializer,
    bias_init: Initializer,
) -> tuple[Shape, ArraySpecs]:
    """Params ``scale``, ``bias``; buffers ``running_mean`` (zeros), ``running_var`` (ones); all ``(C,)``."""
    _check_rank(len(in_shape), ranks, name, in_shape)
    c = in_shape[1]
    if c is None:
        raise ShapeError(name, f"the channel axis 1 must be known, got {describe_shape(in_shape)}")
    params = {"scale": ArraySpec((c,), scale_init), "bias": ArraySpec((c,), bias_init)} if affine else {}
    buffers = {
        "running_mean": ArraySpec((c,), zeros(), buffer=True),
        "running_var": ArraySpec((c,), ones(), buffer=True),
    }
    return in_shape, params | buffers


def _channel(v: Array, ndim: int) -> Array:
    """A ``(C,)`` vector shaped to broadcast against an ``(N, C, ...)`` array of rank ``ndim``."""
    return v.reshape(v.shape + (1,) * (ndim - 2))


def _forward(
    params: Params,
    x: Array,
    ctx: Context = EVAL,
    /,
    *,
    ranks: tuple[int, ...],
    name: str,
    affine: bool,
    momentum: float,
    eps: float,
    **slips: object,
) -> tuple[Array, BatchNormCache]:
    """Normalise ``x`` (``(N, C, ...)``) per channel with batch (train) or running (eval) statistics."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    check_keys(params, _AFFINE if affine else NO_PARAMS, name)
    check_float(x, name)
    _check_rank(x.ndim, ranks, name, x.shape)
    buffers = ctx.buffers
    _check_buffer_keys(buffers, name)
    c = x.shape[1]
    running_mean, running_var = _running(buffers, c, x, name)
    check_same_dtype(x, running_mean, name)
    if affine:
        check_param(params, "scale", (c,), name, running_mean.dtype)
        check_param(params, "bias", (c,), name, running_mean.dtype)
    axes = (0, *range(2, x.ndim))
    n = x.size // c if c else 0
    if ctx.train and n == 1:
        raise ShapeError(
            name, f"training needs more than one value per channel, got input {describe_shape(x.shape)}"
        )
    # An empty batch has no statistics: as PyTorch, it leaves the running ones as they were.
    if ctx.train and n:
        mean = x.mean(axis=axes)
        xc = x - _channel(mean, x.ndim)
        var = np.mean(xc * xc, axis=axes)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = xc * _channel(inv_std, x.ndim)
        keep = 1.0 - momentum
        new_buffers: Buffers = adopt(
            {
                "running_mean": keep * running_mean + momentum * mean,
                "running_var": keep * running_var + (momentum * n / (n - 1)) * var,
            }
        )
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        xhat = (x - _channel(running_mean, x.ndim)) * _channel(inv_std, x.ndim)
        new_buffers = buffers
    y = xhat * _channel(params["scale"], x.ndim) + _channel(params["bias"], x.ndim) if affine else xhat
    return y, BatchNormCache(xhat, inv_std, bool(ctx.train and n), new_buffers, name)


def _check_buffer_keys(buffers: Buffers, name: str) -> None:
    """Raise :class:`ParamsError` unless ``buffers`` is a mapping with the two running statistics."""
    keys = buffers.keys() if isinstance(buffers, Mapping) else None
    if keys != _BUFFER_KEYS:
        got = sorted(keys, key=repr) if keys is not None else f"a {type(buffers).__name__}"
        raise ParamsError(
            name,
            f"expected buffer keys {sorted(_BUFFER_KEYS)} in ctx.buffers, got {got}; "
            "build the buffers with layer.init_with_buffers and pass them as Context(buffers=...)",
        )


def _running(buffers: Buffers, c: int, x: Array, name: str) -> tuple[Array, Array]:
    """``(running_mean, running_var)``, checked: arrays of shape ``(C,)`` of one floating dtype."""
    try:
        mean = check_param(buffers, "running_mean", (c,), name, what="buffer")
    except ShapeError:
        found = buffers["running_mean"]
        if found.ndim == 1:  # a fine buffer: the input does not fit it
            raise ShapeError(
                name,
                f"expected input with {found.shape[0]} channels on axis 1, got {describe_shape(x.shape)}",
            ) from None
        raise
    return mean, check_param(buffers, "running_var", (c,), name, mean.dtype, what="buffer")


def _backward(
    params: Params, cache: BatchNormCache, dy: Array, /, *, name: str, affine: bool
) -> tuple[Array, Params]:
    """Gradients of the batch (train) or running-statistics (eval) normalisation; see the module docstring."""
    if type(cache) is not BatchNormCache or cache.kind != name:
        wrong_cache(cache, f"BatchNormCache of {name}", name)
    xhat = cache.xhat
    check_keys(params, _AFFINE if affine else NO_PARAMS, name)
    c = xhat.shape[1]
    if affine:
        check_param(params, "scale", (c,), name, xhat.dtype)
        check_param(params, "bias", (c,), name, xhat.dtype)
    check_dy(dy, xhat.shape, xhat.dtype, name)
    axes = (0, *range(2, xhat.ndim))
    dbias = dy.sum(axis=axes)
    dscale = np.einsum("nc...,nc...->c", dy, xhat, optimize=True) if xhat.ndim > 2 else (dy * xhat).sum(0)
    factor = cache.inv_std * params["scale"] if affine else cache.inv_std
    if cache.train:
        n = xhat.size // c
        dx = _channel(factor / n, xhat.ndim) * (
            n * dy - _channel(dbias, xhat.ndim) - xhat * _channel(dscale, xhat.ndim)
        )
    else:
        dx = dy * _channel(factor, xhat.ndim)
    grads: Params = {"scale": dscale, "bias": dbias} if affine else EMPTY
    return dx, grads


def _buffers_of(cache: BatchNormCache, /) -> Buffers:
    return cache.buffers


class BatchNormOptions(TypedDict, total=False):
    """Keyword arguments shared by the batch norm factories (all optional).

    Attributes:
        momentum: PyTorch's momentum ``m``: ``running = (1 - m) running + m batch`` (default 0.1).
        eps: added to the variance before the square root (default 1e-5).
        affine: learn ``scale`` and ``bias`` of shape ``(C,)`` (default True).
        scale_init: initializer for ``scale`` (default ones).
        bias_init: initializer for ``bias`` (default zeros).
        dtype: dtype of params and buffers (default float32).
    """

    momentum: float
    eps: float
    affine: bool
    scale_init: Initializer
    bias_init: Initializer
    dtype: npt.DTypeLike


def _make(name: str, ranks: tuple[int, ...], options: BatchNormOptions) -> Layer[BatchNormCache]:
    check_options(options, BatchNormOptions, name)
    momentum = real(options.get("momentum", 0.1), "momentum", name)
    eps = real(options.get("eps", 1e-5), "eps", name)
    affine = flag(options.get("affine", True), "affine", name)
    if not 0.0 <= momentum <= 1.0:
        raise DomainError(name, f"momentum must be in [0, 1], got {momentum!r}")
    if not eps > 0.0:
        raise DomainError(name, f"eps must be positive, got {eps!r}")
    scale_init = initializer(options.get("scale_init"), ones(), "scale_init", name)
    bias_init = initializer(options.get("bias_init"), zeros(), "bias_init", name)
    shapes = partial(_shapes, ranks=ranks, scale_init=scale_init, bias_init=bias_init)
    forward = partial(_forward, ranks=ranks, momentum=momentum, eps=eps)
    dtype = float_dtype(options.get("dtype", np.float32), name)
    return build(
        name,
        shapes,
        forward,
        _backward,
        dtype=dtype,
        buffers_of=_buffers_of,
        reads_context=True,
        name=name,
        affine=affine,
    )


def batch_norm(**options: Unpack[BatchNormOptions]) -> Layer[BatchNormCache]:
    """Batch normalisation over axis 1 of inputs ``(N, C, *spatial)`` of any rank from 2 to 5.

    Args:
        **options: ``momentum``, ``eps``, ``affine``, ``scale_init``, ``bias_init``, ``dtype``
            (see :class:`BatchNormOptions`).
    """
    return _make("batch_norm", (2, 3, 4, 5), options)


def batch_norm1d(**options: Unpack[BatchNormOptions]) -> Layer[BatchNormCache]:
    """``torch.nn.BatchNorm1d``: inputs ``(N, C)`` (after a dense layer) or ``(N, C, L)``.

    The number of channels is inferred at ``init``.

    Args:
        **options: ``momentum``, ``eps``, ``affine``, ``scale_init``, ``bias_init``, ``dtype``
            (see :class:`BatchNormOptions`).

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> bn = batch_norm1d()
        >>> _, params, buffers = bn.init_with_buffers(fdl.random.key(0), (None, 3))
        >>> x = np.arange(12, dtype=np.float32).reshape(4, 3)
        >>> y, cache = bn.forward(params, x, fdl.Context(train=True, buffers=buffers))
        >>> y.mean(axis=0).round(6).tolist()
        [0.0, 0.0, 0.0]
        >>> bn.buffers_of(cache)["running_mean"].tolist()     # 0.9 * 0 + 0.1 * [4.5, 5.5, 6.5]
        [0.45, 0.55, 0.65]
    """
    return _make("batch_norm1d", (2, 3), options)


def batch_norm2d(**options: Unpack[BatchNormOptions]) -> Layer[BatchNormCache]:
    """``torch.nn.BatchNorm2d``: images ``(N, C, H, W)``.

    Args:
        **options: ``momentum``, ``eps``, ``affine``, ``scale_init``, ``bias_init``, ``dtype``
            (see :class:`BatchNormOptions`).
    """
    return _make("batch_norm2d", (4,), options)
