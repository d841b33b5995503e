"""Convolution layers ``conv1d`` (``NCL``) and ``conv2d`` (``NCHW``), as ``torch.nn.Conv1d/2d``.

Shapes: ``x`` is ``(N, C, *S)``, ``w`` is ``(O, C / groups, *K)`` (PyTorch's layout, so a
``state_dict`` maps over by renaming ``weight``/``bias`` to ``w``/``b``), ``b`` is ``(O,)`` and ``y``
is ``(N, O, *Out)`` with ``Out = floor((S + pad_before + pad_after - d (K - 1) - 1) / s) + 1``.

With ``xp`` the zero-padded input and ``g(o)`` the group of output channel ``o`` (this is a
cross-correlation, as in every deep-learning library)::

    y[n, o, p]  = b[o] + sum_{c, i} w[o, c, i] xp[n, g(o) C/G + c, p s + i d]
    dw[o, c, i] = sum_{n, p} dy[n, o, p] xp[n, g(o) C/G + c, p s + i d]
    db[o]       = sum_{n, p} dy[n, o, p]
    dx          = the padding cropped from dxp[n, c, q] = sum_{o, i, p: p s + i d = q} w[o, c, i] dy[n, o, p]

Forward is one GEMM on an im2col copy of a strided window view, which the cache keeps (one GEMM per
sample when the product is shallow, as in a first layer); backward is one GEMM on it for ``dw`` and
one GEMM plus a strided scatter straight into the unpadded ``dx`` (see
:mod:`functional_dl.layers._conv_gemm`). A depthwise convolution (one input channel per group, at
most a few outputs each) is a sum of per-channel products of shifted views instead, one per kernel
offset (:mod:`functional_dl.layers._conv_depthwise`): as GEMMs it would be matrix-vector products.
Training skips ``dx`` of the first layer through ``Layer.param_grads`` (``_backward_params``).
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
from functional_dl.errors import ShapeError, describe_shape
from functional_dl.initializers import Initializer
from functional_dl.layers._args import check_options, flag, float_dtype
from functional_dl.layers._builder import ArraySpecs, build, weight_and_bias
from functional_dl.layers._conv_depthwise import depthwise_backward, depthwise_forward, is_depthwise
from functional_dl.layers._conv_gemm import (
    channels_major,
    col_weight_grad,
    correlate,
    im2col,
    input_grad_cropped,
)
from functional_dl.layers._conv_options import ConvOptions, check_channels, initializers, input_weight, layout
from functional_dl.layers._windows import (
    Pads,
    check_fits,
    out_sizes,
    pad,
    resolve_padding,
    to_tuple,
)
from functional_dl.types import EVAL, Array, Context, Layer, Params, Shape

__all__ = ["ConvCache", "ConvOptions", "ConvSpec", "conv1d", "conv2d"]

_WITH_BIAS = frozenset({"w", "b"})
_NO_BIAS = frozenset({"w"})


class ConvSpec(NamedTuple):
    """The hyperparameters of a convolution, normalised to one entry per spatial axis."""

    name: str  # "conv1d" or "conv2d", used in error messages
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads  # (before, after) per spatial axis
    dilation: tuple[int, ...]
    groups: int
    use_bias: bool


class ConvCache(NamedTuple):
    """What backward needs from forward."""

    x: Array  # (N, C, *S), the unpadded input
    # What dw is computed from: im2col of the padded input, (G, C/G * prod(K), N * prod(Out)); for
    # a depthwise convolution (one input channel per group), the padded input itself, as
    # _conv_depthwise.depthwise_forward lays it out.
    col: Array
    spec: ConvSpec  # the layer that made it (conv1d and conv2d of any size share this type)


def _shapes(
    in_shape: Shape, /, *, spec: ConvSpec, w_init: Initializer, b_init: Initializer
) -> tuple[Shape, ArraySpecs]:
    """Params ``{"w": (O, C / groups, *K), "b": (O,)}`` for inputs of shape ``(batch, C, *S)``."""
    nd = len(spec.kernel)
    if len(in_shape) != nd + 2 or in_shape[1] is None:
        raise ShapeError(spec.name, f"expected an input shape {layout(nd)}, got {describe_shape(in_shape)}")
    channels = in_shape[1]
    if channels % spec.groups:
        raise ShapeError(spec.name, f"{channels} input channels are not divisible by groups={spec.groups}")
    spatial = in_shape[2:]
    check_fits(spatial, spec.pads, spec.kernel, spec.dilation, spec.name)
    padded = [None if n is None else n + lo + hi for n, (lo, hi) in zip(spatial, spec.pads, strict=True)]
    out = tuple(
        None if p is None else out_sizes((p,), (k,), (s,), (d,))[0]
        for p, k, s, d in zip(padded, spec.kernel, spec.stride, spec.dilation, strict=True)
    )
    w_shape = (spec.out_channels, channels // spec.groups, *spec.kernel)
    specs = weight_and_bias(w_shape, spec.out_channels, w_init, b_init, use_bias=spec.use_bias)
    return (in_shape[0], spec.out_channels, *out), specs


def _weight(params: Params, channels: int, spec: ConvSpec, *, blame_input: bool) -> Array:
    """``w`` (and ``b``), after checking the params are what ``init`` makes for ``channels`` inputs.

    With ``blame_input``, a weight that is fine but for another channel count is reported as an
    input that does not fit it (forward); otherwise as the weight's fault (backward, whose input
    is the forward's).
    """
    check_keys(params, _WITH_BIAS if spec.use_bias else _NO_BIAS, spec.name)
    if channels % spec.groups:
        raise ShapeError(spec.name, f"{channels} input channels are not divisible by groups={spec.groups}")
    try:
        w = check_param(params, "w", (spec.out_channels, channels // spec.groups, *spec.kernel), spec.name)
    except ShapeError:
        w = params["w"]
        fine = (
            w.ndim == len(spec.kernel) + 2 and w.shape[0] == spec.out_channels and w.shape[2:] == spec.kernel
        )
        if blame_input and fine:
            raise ShapeError(
                spec.name,
                f"expected {w.shape[1] * spec.groups} input channels (weight {describe_shape(w.shape)}, "
                f"groups={spec.groups}), got {channels}",
            ) from None
        raise
    if spec.use_bias:
        check_param(params, "b", (spec.out_channels,), spec.name, w.dtype)
    return w


# The weight as the input's check asks for it: a channel count that fits no weight blames the input.
_input_weight = partial(_weight, blame_input=True)


def _check_input(params: Params, x: Array, spec: ConvSpec) -> Array:
    """Validate params and input (a few comparisons) and return the weight."""
    w = input_weight(params, x, spec, _input_weight, nd=len(spec.kernel), name=spec.name)
    check_same_dtype(x, w, spec.name)
    check_fits(x.shape[2:], spec.pads, spec.kernel, spec.dilation, spec.name)
    return w


def _forward(
    params: Params, x: Array, ctx: Context = EVAL, /, *, spec: ConvSpec, **slips: object
) -> tuple[Array, ConvCache]:
    """``y = conv(x, w) + b``; ``x`` is ``(N, C, *S)``, ``y`` is ``(N, O, *Out)``."""
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(spec.name, slips)
    w = _check_input(params, x, spec)
    bias = params["b"] if spec.use_bias else None
    if is_depthwise(w.shape, spec.groups):
        y, taps = depthwise_forward(x, w, bias, pads=spec.pads, stride=spec.stride, dilation=spec.dilation)
        return y, ConvCache(x, taps, spec)
    xp = pad(x, spec.pads)
    col = im2col(xp, spec.kernel, spec.stride, spec.dilation, spec.groups)
    y = correlate(xp, w, stride=spec.stride, dilation=spec.dilation, groups=spec.groups, bias=bias, col=col)
    return y, ConvCache(x, col, spec)


def _checked_weight(params: Params, cache: ConvCache, dy: Array, spec: ConvSpec) -> Array:
    """The weight, once the cache, the params and ``dy`` (of shape ``(N, O, *Out)``) are validated."""
    check_cache(cache, ConvCache, spec.name)
    if cache.spec is not spec and cache.spec != spec:
        wrong_cache(cache, f"ConvCache of this {spec.name}", spec.name)
    x = cache.x
    w = _weight(params, x.shape[1], spec, blame_input=False)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], spec.pads, strict=True))
    out = out_sizes(padded, spec.kernel, spec.stride, spec.dilation)
    check_dy(dy, (x.shape[0], w.shape[0], *out), w.dtype, spec.name)
    return w


def _grads(
    dy: Array, w: Array, cache: ConvCache, spec: ConvSpec, *, input_grad: bool
) -> tuple[Array | None, Params]:
    """``(dx, {"w": dw, "b": db})`` (``dx`` only if ``input_grad``) by the formulas above."""
    x = cache.x
    pads, stride, dilation = spec.pads, spec.stride, spec.dilation
    dx: Array | None = None
    if is_depthwise(w.shape, spec.groups):
        dx, dw = depthwise_backward(
            cache.col,
            dy,
            w,
            spatial=x.shape[2:],
            pads=pads,
            stride=stride,
            dilation=dilation,
            input_grad=input_grad,
        )
        db = dy.sum(axis=(0, *range(2, dy.ndim)))
    else:
        dy_cm = channels_major(dy, spec.groups)  # shared by all three products
        dw = col_weight_grad(cache.col, dy_cm, spec.kernel)
        db = dy_cm.sum(axis=2).reshape(-1)
        if input_grad:
            dx = input_grad_cropped(
                dy_cm,
                w,
                n=x.shape[0],
                spatial=x.shape[2:],
                pads=pads,
                stride=stride,
                dilation=dilation,
                out=dy.shape[2:],
            )
    return dx, ({"w": dw, "b": db} if spec.use_bias else {"w": dw})


def _backward(params: Params, cache: ConvCache, dy: Array, /, *, spec: ConvSpec) -> tuple[Array, Params]:
    """``(dx, {"w": dw, "b": db})`` by the formulas in the module docstring."""
    dx, grads = _grads(dy, _checked_weight(params, cache, dy, spec), cache, spec, input_grad=True)
    assert dx is not None  # asked for
    return dx, grads


def _backward_params(params: Params, cache: ConvCache, dy: Array, /, *, spec: ConvSpec) -> Params:
    """``dw`` and ``db`` as :func:`_backward` computes them, without ``dx``."""
    return _grads(dy, _checked_weight(params, cache, dy, spec), cache, spec, input_grad=False)[1]


def _conv(
    nd: int, out_channels: int, kernel_size: int | Sequence[int], options: ConvOptions
) -> Layer[ConvCache]:
    name = f"conv{nd}d"
    check_options(options, ConvOptions, name)
    out_channels, groups = check_channels(name, out_channels, options.get("groups", 1))
    kernel = to_tuple(kernel_size, nd, "kernel_size", name)
    strides = to_tuple(options.get("stride", 1), nd, "stride", name)
    dilations = to_tuple(options.get("dilation", 1), nd, "dilation", name)
    pads = resolve_padding(options.get("padding", 0), kernel, dilations, strides, name)
    use_bias = flag(options.get("use_bias", True), "use_bias", name)
    spec = ConvSpec(name, out_channels, kernel, strides, pads, dilations, groups, use_bias)
    w_init, b_init = initializers(options, name)
    shapes = partial(_shapes, w_init=w_init, b_init=b_init)
    return build(
        name,
        shapes,
        _forward,
        _backward,
        dtype=float_dtype(options.get("dtype", np.float32), name),
        backward_params=_backward_params,
        spec=spec,
    )


def conv1d(
    out_channels: int, kernel_size: int | Sequence[int], **options: Unpack[ConvOptions]
) -> Layer[ConvCache]:
    """A 1-D convolution over ``(N, C, L)`` inputs; the arguments are those of :func:`conv2d`.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = conv1d(4, 3, stride=2, padding=1)
        >>> out_shape, params = layer.init(random.key(0), (None, 2, 9))
        >>> out_shape, params["w"].shape
        ((None, 4, 5), (4, 2, 3))
    """
    return _conv(1, out_channels, kernel_size, options)


def conv2d(
    out_channels: int, kernel_size: int | Sequence[int], **options: Unpack[ConvOptions]
) -> Layer[ConvCache]:
    """A 2-D convolution over ``(N, C, H, W)`` inputs, as ``torch.nn.Conv2d``.

    Args:
        out_channels: ``O``, the number of output channels.
        kernel_size: an int or ``(kh, kw)``.
        **options: keyword-only (:class:`ConvOptions`):

            * ``stride``: an int or ``(sh, sw)`` (default 1).
            * ``padding``: zero padding: an int, ``(ph, pw)`` (both sides), ``((top, bottom),
              (left, right))``, ``"valid"`` (none, the default 0) or ``"same"`` (output size =
              input size; stride 1 only; an odd total puts the extra row/column after).
            * ``dilation``: spacing between kernel taps, an int or ``(dh, dw)`` (default 1).
            * ``groups``: split the channels into this many independent convolutions;
              ``groups = C = O`` is a depthwise convolution (default 1).
            * ``use_bias``: add a bias ``b`` of shape ``(O,)`` (default True).
            * ``w_init``: weight initializer; He normal (``N(0, 2 / fan_in)``,
              ``fan_in = C / groups * kh * kw``) by default.
            * ``b_init``: bias initializer; zeros by default.
            * ``dtype``: dtype of the parameters (inputs must match it); float32 by default.

    Raises:
        ShapeError: (at init or forward) input not 4-D, channel count not ``w.shape[1] * groups``,
            or kernel larger than the padded input.

    Example:
        >>> import numpy as np
        >>> from functional_dl import random
        >>> layer = conv2d(8, 3, padding="same")
        >>> out_shape, params = layer.init(random.key(0), (None, 3, 5, 5))
        >>> out_shape, params["w"].shape
        ((None, 8, 5, 5), (8, 3, 3, 3))
        >>> y, cache = layer.forward(params, np.ones((2, 3, 5, 5), np.float32))
        >>> y.shape, y.dtype
        ((2, 8, 5, 5), dtype('float32'))
    """
    return _conv(2, out_channels, kernel_size, options)
