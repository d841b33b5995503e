"""Multi-head self-attention's forward and full backward pass: functional_dl vs PyTorch CPU, float32.

Batch 32, 128 steps, d_model 256, 8 heads, no mask; one call is the forward pass and the backward
pass (input and every weight gradient) for a fixed gradient of the output. PyTorch runs
``torch.nn.MultiheadAttention(batch_first=True)`` as ``mha(x, x, x, need_weights=False)`` with
autograd, we run ``functional_dl.layers.multi_head_attention``; both with 2 threads (the registry's
default).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.common import F32, Run

BATCH, STEPS, D_MODEL, HEADS = 32, 128, 256, 8


def _data() -> tuple[F32, F32]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, STEPS, D_MODEL), dtype=np.float32)
    return x, rng.standard_normal((BATCH, STEPS, D_MODEL), dtype=np.float32)


def fdl_attention(quick: bool) -> Run:
    import functional_dl as fdl

    x, dy = _data()
    layer = fdl.layers.multi_head_attention(D_MODEL, HEADS)
    _, params = layer.init(fdl.random.key(0), (None, STEPS, D_MODEL))

    def run() -> object:
        _, cache = layer.forward(params, x)
        return layer.backward(params, cache, dy)

    return run


def torch_attention(quick: bool) -> Run:
    import torch

    x_np, dy_np = _data()
    x = torch.from_numpy(x_np).requires_grad_(True)
    dy = torch.from_numpy(dy_np)
    torch.manual_seed(0)
    net = torch.nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True)

    def run() -> object:
        x.grad = None
        net.zero_grad(set_to_none=True)
        y, _ = net(x, x, x, need_weights=False)
        y.backward(dy)
        return x.grad

    return run


BUILDERS: dict[str, Callable[[bool], Run]] = {"functional_dl": fdl_attention, "torch": torch_attention}
