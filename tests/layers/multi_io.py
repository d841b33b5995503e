"""A small layer with several inputs and several outputs, for testing the multi-input contract.

``gated_scale``: inputs ``(x, h, mask)`` with ``x`` and ``h`` float ``(batch, n)`` (``h`` may be
``None``) and ``mask`` boolean ``(batch, n)``; params ``w`` of shape ``(n,)``; outputs
``(y, s)`` with ``y = mask * (w * x) + h`` and ``s = sum(y * y, axis=1)``, so::

    dy_total = dy + 2 y ds       dx = mask * w * dy_total     dh = dy_total
    dw = sum over the batch of mask * x * dy_total           dmask = None (boolean input)

A ``None`` cotangent for ``y`` or ``s`` counts as zero.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

import functional_dl as fdl
from functional_dl.errors import ShapeError
from functional_dl.types import BoolArray, without_buffers


class GatedScaleCache(NamedTuple):
    x: fdl.Array  # (batch, n)
    mask: BoolArray  # (batch, n)
    y: fdl.Array  # (batch, n)
    has_h: bool


def _init(key: fdl.Key, in_shape: Any, /) -> tuple[Any, fdl.Params]:
    x_shape, _, _ = in_shape
    n = x_shape[-1]
    w = fdl.random.normal(key, (n,), np.float32) + 1.0
    return (x_shape, x_shape[:1]), fdl.params.freeze({"w": w})


def _forward(params: fdl.Params, inputs: Any, ctx: fdl.Context = fdl.EVAL, /) -> tuple[Any, GatedScaleCache]:
    x, h, mask = inputs
    if mask.dtype != np.bool_:
        raise ShapeError("gated_scale", f"expected a boolean mask, got {mask.dtype}")
    y = np.where(mask, params["w"] * x, 0)
    if h is not None:
        y = y + h
    return (y, np.sum(y * y, axis=1)), GatedScaleCache(x, mask, y, h is not None)


def _backward(
    params: fdl.Params, cache: GatedScaleCache, dout: Any, /, *, leak: bool
) -> tuple[Any, fdl.Params]:
    dy, ds = dout
    total = np.zeros_like(cache.y) if dy is None else dy.copy()
    if ds is not None:
        total += 2 * cache.y * ds[:, None]
    gated = np.where(cache.mask, total, 0)
    dmask = np.zeros(cache.mask.shape, cache.y.dtype) if leak else None  # leak: the wrong answer
    dx = gated * params["w"]
    return (dx, total if cache.has_h else None, dmask), {"w": np.sum(gated * cache.x, axis=0)}


def gated_scale(*, leak_mask_gradient: bool = False) -> fdl.Layer[GatedScaleCache]:
    """The layer of the module docstring; ``leak_mask_gradient`` gives the mask a gradient (wrongly)."""
    return fdl.Layer(
        init_with_buffers=without_buffers(_init),
        forward=_forward,
        backward=partial(_backward, leak=leak_mask_gradient),
        name="gated_scale",
        reads_context=False,
    )


class PairInput(NamedTuple):
    """A named input record: it is a tuple, so the contract treats it as one."""

    x: fdl.Array
    h: fdl.Array | None
    mask: BoolArray


# Layers with tuple inputs are typed as the one-array contract (see functional_dl.types), so the
# tests reach them through these three untyped doors rather than a type: ignore on every call.


def init_flow(layer: fdl.Layer[Any], key: fdl.Key, in_shape: object) -> tuple[Any, fdl.Params]:
    """``layer.init`` with a tuple of shapes."""
    return layer.init(key, in_shape)  # type: ignore[arg-type]


def forward_flow(
    layer: fdl.Layer[Any], params: fdl.Params, x: object, ctx: fdl.Context = fdl.EVAL
) -> tuple[Any, Any]:
    """``layer.forward`` with a tuple of inputs."""
    return layer.forward(params, x, ctx)  # type: ignore[arg-type]


def backward_flow(
    layer: fdl.Layer[Any], params: fdl.Params, cache: object, dy: object
) -> tuple[Any, fdl.Params]:
    """``layer.backward`` with a tuple of cotangents."""
    return layer.backward(params, cache, dy)  # type: ignore[arg-type]
