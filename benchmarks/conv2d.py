"""One conv2d layer's forward and full backward pass: functional_dl vs PyTorch CPU, float32.

The input is ``64 x 32 x 28 x 28`` (NCHW) with a 3x3 kernel, padding 1 and a bias; one call is
the forward pass and the backward pass (input, weight and bias gradients) for a fixed output
gradient. Three variants: 64 output channels at stride 1 (the common case) and at stride 2, and
a depthwise convolution (``groups = channels = 32``, 32 outputs). In the worker's report,
functional_dl's ``alloc_peak_mb`` (tracemalloc) is worth comparing with the size of one im2col
matrix, ``N * C * 9 * H_out * W_out`` floats (56.4 MB at stride 1); the depthwise variant makes
no im2col matrix (it works on the padded input itself).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from benchmarks.common import F32, Run, Unsupported

N, C, H, W, K = 64, 32, 28, 28, 3


def _data(out: int, stride: int) -> tuple[F32, F32]:
    rng = np.random.default_rng(0)
    size = (H + 2 - K) // stride + 1
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    return x, rng.standard_normal((N, out, size, size), dtype=np.float32)


def fdl_conv(quick: bool, *, out: int, stride: int, groups: int) -> Run:
    import functional_dl as fdl

    x, dy = _data(out, stride)
    try:
        layer = fdl.layers.conv2d(out, K, padding=1, stride=stride, groups=groups)
        _, params = layer.init(fdl.random.key(0), (None, C, H, W))
    except (TypeError, ValueError) as e:  # a library without grouped convolutions
        raise Unsupported(f"conv2d(groups={groups}) is not supported: {e}") from e

    def run() -> object:
        _, cache = layer.forward(params, x)
        return layer.backward(params, cache, dy)

    return run


def torch_conv(quick: bool, *, out: int, stride: int, groups: int) -> Run:
    import torch

    x_np, dy_np = _data(out, stride)
    x = torch.from_numpy(x_np).requires_grad_(True)
    dy = torch.from_numpy(dy_np)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(C, out, K, padding=1, stride=stride, groups=groups)

    def run() -> object:
        x.grad = None
        conv.zero_grad(set_to_none=True)
        conv(x).backward(dy)
        return x.grad

    return run


def builders(out: int, stride: int = 1, groups: int = 1) -> dict[str, Callable[[bool], Run]]:
    return {
        "functional_dl": partial(fdl_conv, out=out, stride=stride, groups=groups),
        "torch": partial(torch_conv, out=out, stride=stride, groups=groups),
    }
