"""Transposed 2-D convolution ``conv_transpose2d``, as ``torch.nn.ConvTranspose2d``.

A transposed convolution is the adjoint (the input gradient) of a convolution with the same
weight: it maps ``(N, C_in, H, W)`` to ``(N, C_out, H_out, W_out)`` with PyTorch's size rule

    H_out = (H - 1) s - (pad_top + pad_bottom) + d (k - 1) + output_padding + 1

and the weight is stored ``(C_in, C_out / groups, kh, kw)`` as in PyTorch. With ``conv`` the
convolution whose input gradient this is (padded size ``H_out + pad_top + pad_bottom``)::

    y  = crop(conv^T(x, w)) + b        the input-gradient product of conv, then the padding cut off
    dx = conv(pad(dy), w)              a plain convolution of the padded output gradient
    dw = the weight gradient of conv with input pad(dy) and output gradient x
    db = sum over (n, h, w) of dy

so the three products of :mod:`functional_dl.layers._conv_gemm` serve here too, roles swapped.
``output_padding`` only adds rows/columns at the bottom/right that no window of the
underlying convolution reads (so, as in PyTorch, they receive only the bias).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple, Unpack

import numpy as np

from functional_dl._checks import (
    check_cache,
    check_dy,
    check_keys,
    check_param,
    check_same_dtype,
    not_an_array,
    wrong_cache,
)
from functional_dl.errors import DomainError, ShapeError, describe_shape
from functional_dl.initializers import Initializer
from functional_dl.layers._args import check_options, flag, float_dtype
from functional_dl.layers._builder import ArraySpecs, build, weight_and_bias
from functional_dl.layers._conv_gemm import (
    channels_major,
    contiguous_with_bias,
    correlate,
    input_grad,
    weight_grad,
)
from functional_dl.layers._conv_options import ConvOptions, check_channels, initializers
from functional_dl.layers._windows import Pads, crop, extents, pad, resolve_padding, to_tuple
from functional_dl.types import EVAL, Array, Context, Layer, Params, Shape

__all__ = [
    "ConvTransposeCache",
    "ConvTransposeOptions",
    "ConvTransposeSpec",
    "conv_transpose2d",
]

_NAME = "conv_transpose2d"
_WITH_BIAS = frozenset({"w", "b"})
_NO_BIAS = frozenset({"w"})


class ConvTransposeSpec(NamedTuple):
    """The hyperparameters, normalised to one entry per spatial axis."""

    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads  # (before, after) removed from each spatial axis of the full output
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    use_bias: bool


class ConvTransposeCache(NamedTuple):
    """What backward needs from forward."""

    x: Array  # (N, C_in, H, W)
    spec: ConvTransposeSpec  # the layer that made it


def _full_sizes(spatial: Sequence[int], spec: ConvTransposeSpec) -> tuple[int, ...]:
    """Spatial size before the padding is cut off: ``(H - 1) s + d (k - 1) + 1 + output_padding``."""
    return tuple(
        (n - 1) * s + e + op
        for n, s, e, op in zip(
            spatial, spec.stride, extents(spec.kernel, spec.dilation), spec.output_padding, strict=True
        )
    )


def _out_sizes(spatial: Sequence[int | None], spec: ConvTransposeSpec) -> tuple[int | None, ...]:
    """``H_out`` per axis (``None`` stays ``None``); raises :class:`ShapeError` if one is < 1."""
    known = [1 if n is None else n for n in spatial]
    sizes = [f - lo - hi for f, (lo, hi) in zip(_full_sizes(known, spec), spec.pads, strict=True)]
    if min(sizes) < 1:
        raise ShapeError(
            _NAME, f"padding {spec.pads} leaves no output for input spatial size {describe_shape(spatial)}"
        )
    return tuple(None if n is None else o for n, o in zip(spatial, sizes, strict=True))


def _shapes(
    in_shape: Shape, /, *, spec: ConvTransposeSpec, w_init: Initializer, b_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    """Params ``{"w": (C_in, C_out / groups, kh, kw), "b": (C_out,)}`` for ``(batch, C_in, H, W)``."""
    if len(in_shape) != 4 or in_shape[1] is None:
        raise ShapeError(_NAME, f"expected an input shape (N, C, H, W), got {describe_shape(in_shape)}")
    channels = in_shape[1]
    if channels % spec.groups:
        raise ShapeError(_NAME, f"{channels} input channels are not divisible by groups={spec.groups}")
    out = _out_sizes(in_shape[2:], spec)
    w_shape = (channels, spec.out_channels // spec.groups, *spec.kernel)
    specs = weight_and_bias(w_shape, spec.out_channels, w_init, b_init, use_bias=spec.use_bias)
    return (in_shape[0], spec.out_channels, *out), specs


def _weight(params: Params, channels: int, spec: ConvTransposeSpec, *, blame_input: bool) -> Array:
    """``w`` (and ``b``), after checking the params are what ``init`` makes for ``channels`` inputs."""
    check_keys(params, _WITH_BIAS if spec.use_bias else _NO_BIAS, _NAME)
    if channels % spec.groups:
        raise ShapeError(_NAME, f"{channels} input channels are not divisible by groups={spec.groups}")
    try:
        w = check_param(params, "w", (channels, spec.out_channels // spec.groups, *spec.kernel), _NAME)
    except ShapeError:
        w = params["w"]
        fine = w.ndim == 4 and w.shape[1:] == (spec.out_channels // spec.groups, *spec.kernel)
        if blame_input and fine:
            raise ShapeError(
                _NAME,
                f"expected {w.shape[0]} input channels (weight {describe_shape(w.shape)}), got {channels}",
            ) from None
        raise
    if spec.use_bias:
        check_param(params, "b", (spec.out_channels,), _NAME, w.dtype)
    return w


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: ConvTransposeSpec
) -> tuple[Array, ConvTransposeCache]:
    """``y = conv_transpose(x, w) + b``: ``(N, C_in, H, W)`` to ``(N, C_out, H_out, W_out)``."""
    if type(x) is not np.ndarray or x.ndim != 4:
        if not isinstance(x, np.ndarray):
            raise not_an_array(x, "the input", _NAME)
        raise ShapeError(_NAME, f"expected a 4-D input (N, C, H, W), got shape {describe_shape(x.shape)}")
    try:
        w = _weight(params, x.shape[1], spec, blame_input=True)
    except ShapeError as err:
        raise ShapeError(_NAME, f"{err.detail}; input of shape {describe_shape(x.shape)}") from None
    check_same_dtype(x, w, _NAME)
    _out_sizes(x.shape[2:], spec)
    full = _full_sizes(x.shape[2:], spec)
    zp = input_grad(
        channels_major(x, spec.groups),
        w,
        n=x.shape[0],
        padded=full,
        stride=spec.stride,
        dilation=spec.dilation,
        out=x.shape[2:],
    )
    y = contiguous_with_bias(crop(zp, spec.pads), params["b"] if spec.use_bias else None)
    return y, ConvTransposeCache(x, spec)


def _backward(
    params: Params, cache: ConvTransposeCache, dy: Array, /, *, spec: ConvTransposeSpec
) -> tuple[Array, Params]:
    """``(dx, {"w": dw, "b": db})`` by the formulas in the module docstring."""
    check_cache(cache, ConvTransposeCache, _NAME)
    if cache.spec is not spec and cache.spec != spec:
        wrong_cache(cache, f"ConvTransposeCache of this {_NAME}", _NAME)
    x = cache.x
    w = _weight(params, x.shape[1], spec, blame_input=False)
    full = _full_sizes(x.shape[2:], spec)
    out = tuple(f - lo - hi for f, (lo, hi) in zip(full, spec.pads, strict=True))
    check_dy(dy, (x.shape[0], spec.out_channels, *out), w.dtype, _NAME)
    # Rows added by output_padding beyond a whole stride are read by no window: leave them out so
    # the convolution below returns exactly (H, W).
    used = tuple(f - op for f, op in zip(full, spec.output_padding, strict=True))
    dyp = pad(dy, spec.pads)[(slice(None), slice(None), *(slice(0, u) for u in used))]
    dx = correlate(dyp, w, stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
    dw = weight_grad(
        dyp,
        channels_major(x, spec.groups),
        kernel=spec.kernel,
        stride=spec.stride,
        dilation=spec.dilation,
        out=x.shape[2:],
    )
    if spec.use_bias:
        return dx, {"w": dw, "b": dy.sum(axis=(0, 2, 3))}
    return dx, {"w": dw}


class ConvTransposeOptions(ConvOptions, total=False):
    """Keyword options of :func:`conv_transpose2d`: those of convolutions plus ``output_padding``."""

    output_padding: int | Sequence[int]


def conv_transpose2d(
    out_channels: int, kernel_size: int | Sequence[int], **options: Unpack[ConvTransposeOptions]
) -> Layer[ConvTransposeCache]:
    """A transposed 2-D convolution (``torch.nn.ConvTranspose2d``), e.g. to upsample in a decoder.

    Args:
        out_channels: ``C_out``.
        kernel_size: an int or ``(kh, kw)``.
        **options: keyword-only (:class:`ConvTransposeOptions`), as for
            :func:`~functional_dl.layers.conv2d` except:

            * ``stride``: the upsampling factor.
            * ``padding``: removed from each side of the output: an int, ``(ph, pw)`` or
              ``((top, bottom), (left, right))`` (no ``"same"``).
            * ``output_padding``: extra rows/columns at the bottom/right, ``< max(stride,
              dilation)`` per axis (PyTorch's rule); it resolves the ambiguity of output sizes
              under a stride (default 0).
            * ``groups`` divides both ``C_in`` and ``C_out``.

    Example:
        >>> from functional_dl import random
        >>> layer = conv_transpose2d(3, 3, stride=2, padding=1, output_padding=1)
        >>> out_shape, params = layer.init(random.key(0), (None, 4, 7, 7))
        >>> out_shape, params["w"].shape
        ((None, 3, 14, 14), (4, 3, 3, 3))
    """
    check_options(options, ConvTransposeOptions, _NAME)
    out_channels, groups = check_channels(_NAME, out_channels, options.get("groups", 1))
    padding = options.get("padding", 0)
    if isinstance(padding, str) and padding != "valid":
        raise DomainError(_NAME, f"padding must be an int, a tuple or 'valid', got {padding!r}")
    kernel = to_tuple(kernel_size, 2, "kernel_size", _NAME)
    strides = to_tuple(options.get("stride", 1), 2, "stride", _NAME)
    dilations = to_tuple(options.get("dilation", 1), 2, "dilation", _NAME)
    extra = to_tuple(options.get("output_padding", 0), 2, "output_padding", _NAME, minimum=0)
    if any(op >= max(s, d) for op, s, d in zip(extra, strides, dilations, strict=True)):
        raise DomainError(
            _NAME, f"output_padding {extra} must be smaller than max(stride, dilation) per axis"
        )
    spec = ConvTransposeSpec(
        out_channels,
        kernel,
        strides,
        resolve_padding(padding, kernel, dilations, strides, _NAME),
        extra,
        dilations,
        groups,
        flag(options.get("use_bias", True), "use_bias", _NAME),
    )
    w_init, b_init = initializers(options, _NAME)
    shapes = partial(_shapes, w_init=w_init, b_init=b_init)
    dtype = float_dtype(options.get("dtype", np.float32), _NAME)
    return build(_NAME, shapes, _forward, _backward, dtype=dtype, spec=spec)
