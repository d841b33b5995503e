"""Transposed convolutions ``conv_transpose1d`` (``NCL``) and ``conv_transpose2d`` (``NCHW``).

As ``torch.nn.ConvTranspose1d/2d``. A transposed convolution is the adjoint (the input gradient)
of a convolution with the same weight: it maps ``(N, C_in, *S)`` to ``(N, C_out, *S_out)`` with
PyTorch's size rule, per spatial axis of input size ``n``,

    n_out = (n - 1) s - (pad_before + pad_after) + d (k - 1) + output_padding + 1

and the weight is stored ``(C_in, C_out / groups, *K)`` as in PyTorch. With ``conv`` the
convolution whose input gradient this is (padded size ``n_out + pad_before + pad_after``)::

    y  = crop(conv^T(x, w)) + b        the input-gradient product of conv, then the padding cut off
    dx = conv(pad(dy), w)              a plain convolution of the padded output gradient
    dw = the weight gradient of conv with input pad(dy) and output gradient x
    db = sum over the batch and spatial axes of dy

so the three products of :mod:`functional_dl.layers._conv_gemm` serve here too, roles swapped,
for any number of spatial axes. ``output_padding`` only adds positions at the end of each axis
that no window of the underlying convolution reads (so, as in PyTorch, they receive only the bias).
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
    refuse_forward_keywords,
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
from functional_dl.layers._conv_options import ConvOptions, check_channels, initializers, input_weight, layout
from functional_dl.layers._windows import Pads, crop, extents, pad, resolve_padding, to_tuple
from functional_dl.types import EVAL, Array, Context, Layer, Params, Shape

__all__ = [
    "ConvTransposeCache",
    "ConvTransposeOptions",
    "ConvTransposeSpec",
    "conv_transpose1d",
    "conv_transpose2d",
]

_WITH_BIAS = frozenset({"w", "b"})
_NO_BIAS = frozenset({"w"})


class ConvTransposeSpec(NamedTuple):
    """The hyperparameters, normalised to one entry per spatial axis."""

    name: str  # "conv_transpose1d" or "conv_transpose2d", used in error messages
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

    x: Array  # (N, C_in, *S)
    spec: ConvTransposeSpec  # the layer that made it (conv_transpose1d and 2d of any size share this type)


def _full_sizes(spatial: Sequence[int], spec: ConvTransposeSpec) -> tuple[int, ...]:
    """Spatial size before the padding is cut off: ``(n - 1) s + d (k - 1) + 1 + output_padding``."""
    return tuple(
        (n - 1) * s + e + op
        for n, s, e, op in zip(
            spatial, spec.stride, extents(spec.kernel, spec.dilation), spec.output_padding, strict=True
        )
    )


def _out_sizes(spatial: Sequence[int | None], spec: ConvTransposeSpec) -> tuple[int | None, ...]:
    """``n_out`` per axis (``None`` stays ``None``); raises :class:`ShapeError` if one is < 1."""
    known = [1 if n is None else n for n in spatial]
    sizes = [f - lo - hi for f, (lo, hi) in zip(_full_sizes(known, spec), spec.pads, strict=True)]
    if min(sizes) < 1:
        raise ShapeError(
            spec.name,
            f"padding {spec.pads} leaves no output for input spatial size {describe_shape(spatial)}",
        )
    return tuple(None if n is None else o for n, o in zip(spatial, sizes, strict=True))


def _shapes(
    in_shape: Shape, /, *, spec: ConvTransposeSpec, w_init: Initializer, b_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    """Params ``{"w": (C_in, C_out / groups, *K), "b": (C_out,)}`` for ``(batch, C_in, *S)``."""
    nd = len(spec.kernel)
    if len(in_shape) != nd + 2 or in_shape[1] is None:
        raise ShapeError(spec.name, f"expected an input shape {layout(nd)}, got {describe_shape(in_shape)}")
    channels = in_shape[1]
    if channels % spec.groups:
        raise ShapeError(spec.name, f"{channels} input channels are not divisible by groups={spec.groups}")
    out = _out_sizes(in_shape[2:], spec)
    w_shape = (channels, spec.out_channels // spec.groups, *spec.kernel)
    specs = weight_and_bias(w_shape, spec.out_channels, w_init, b_init, use_bias=spec.use_bias)
    return (in_shape[0], spec.out_channels, *out), specs


def _weight(params: Params, channels: int, spec: ConvTransposeSpec, *, blame_input: bool) -> Array:
    """``w`` (and ``b``), after checking the params are what ``init`` makes for ``channels`` inputs."""
    check_keys(params, _WITH_BIAS if spec.use_bias else _NO_BIAS, spec.name)
    if channels % spec.groups:
        raise ShapeError(spec.name, f"{channels} input channels are not divisible by groups={spec.groups}")
    try:
        w = check_param(params, "w", (channels, spec.out_channels // spec.groups, *spec.kernel), spec.name)
    except ShapeError:
        w = params["w"]
        fine = w.ndim == len(spec.kernel) + 2 and w.shape[1:] == (
            spec.out_channels // spec.groups,
            *spec.kernel,
        )
        if blame_input and fine:
            raise ShapeError(
                spec.name,
                f"expected {w.shape[0]} input channels (weight {describe_shape(w.shape)}), got {channels}",
            ) from None
        raise
    if spec.use_bias:
        check_param(params, "b", (spec.out_channels,), spec.name, w.dtype)
    return w


# The weight as the input's check asks for it: a channel count that fits no weight blames the input.
_input_weight = partial(_weight, blame_input=True)


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: ConvTransposeSpec, **slips: object
) -> tuple[Array, ConvTransposeCache]:
    """``y = conv_transpose(x, w) + b``: ``(N, C_in, *S)`` to ``(N, C_out, *S_out)``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(spec.name, slips)
    w = input_weight(params, x, spec, _input_weight, nd=len(spec.kernel), name=spec.name)
    check_same_dtype(x, w, spec.name)
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
    check_cache(cache, ConvTransposeCache, spec.name)
    if cache.spec is not spec and cache.spec != spec:
        wrong_cache(cache, f"ConvTransposeCache of this {spec.name}", spec.name)
    x = cache.x
    w = _weight(params, x.shape[1], spec, blame_input=False)
    full = _full_sizes(x.shape[2:], spec)
    out = tuple(f - lo - hi for f, (lo, hi) in zip(full, spec.pads, strict=True))
    check_dy(dy, (x.shape[0], spec.out_channels, *out), w.dtype, spec.name)
    # Positions added by output_padding beyond a whole stride are read by no window: leave them out
    # so the convolution below returns exactly the input's spatial size.
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
        return dx, {"w": dw, "b": dy.sum(axis=(0, *range(2, dy.ndim)))}
    return dx, {"w": dw}


class ConvTransposeOptions(ConvOptions, total=False):
    """Keyword options of ``conv_transpose1d/2d``: those of convolutions plus ``output_padding``."""

    output_padding: int | Sequence[int]


def _conv_transpose(
    nd: int, out_channels: object, kernel_size: int | Sequence[int], options: ConvTransposeOptions
) -> Layer[ConvTransposeCache]:
    name = f"conv_transpose{nd}d"
    check_options(options, ConvTransposeOptions, name)
    out, groups = check_channels(name, out_channels, options.get("groups", 1))
    padding = options.get("padding", 0)
    if isinstance(padding, str) and padding != "valid":
        raise DomainError(name, f"padding must be an int, a tuple or 'valid', got {padding!r}")
    kernel = to_tuple(kernel_size, nd, "kernel_size", name)
    strides = to_tuple(options.get("stride", 1), nd, "stride", name)
    dilations = to_tuple(options.get("dilation", 1), nd, "dilation", name)
    extra = to_tuple(options.get("output_padding", 0), nd, "output_padding", name, minimum=0)
    if any(op >= max(s, d) for op, s, d in zip(extra, strides, dilations, strict=True)):
        raise DomainError(name, f"output_padding {extra} must be smaller than max(stride, dilation) per axis")
    spec = ConvTransposeSpec(
        name,
        out,
        kernel,
        strides,
        resolve_padding(padding, kernel, dilations, strides, name),
        extra,
        dilations,
        groups,
        flag(options.get("use_bias", True), "use_bias", name),
    )
    w_init, b_init = initializers(options, name)
    shapes = partial(_shapes, w_init=w_init, b_init=b_init)
    dtype = float_dtype(options.get("dtype", np.float32), name)
    return build(name, shapes, _forward, _backward, dtype=dtype, spec=spec)


def conv_transpose1d(
    out_channels: int, kernel_size: int | Sequence[int], **options: Unpack[ConvTransposeOptions]
) -> Layer[ConvTransposeCache]:
    """A transposed 1-D convolution over ``(N, C, L)`` (``torch.nn.ConvTranspose1d``).

    The arguments are those of :func:`conv_transpose2d`, one entry per axis; the weight is
    ``(C_in, C_out / groups, k)``.

    Example:
        >>> from functional_dl import random
        >>> layer = conv_transpose1d(3, 4, stride=2, padding=1)
        >>> out_shape, params = layer.init(random.key(0), (None, 2, 10))
        >>> out_shape, params["w"].shape
        ((None, 3, 20), (2, 3, 4))
    """
    return _conv_transpose(1, out_channels, kernel_size, options)


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
    return _conv_transpose(2, out_channels, kernel_size, options)
