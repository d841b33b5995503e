"""One LSTM layer's forward and full backward pass: functional_dl vs PyTorch CPU, float32.

Batch 64, 100 steps, 128 input features, 256 hidden units, batch-first; one call is the forward
pass and the backward pass (input and every weight gradient) for a fixed gradient of the output
sequence. PyTorch runs ``torch.nn.LSTM`` (its CPU kernel, with autograd), we run
``functional_dl.layers.lstm``; both with 2 threads (the registry's default).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.common import F32, Run

BATCH, STEPS, FEATURES, HIDDEN = 64, 100, 128, 256


def _data() -> tuple[F32, F32]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, STEPS, FEATURES), dtype=np.float32)
    return x, rng.standard_normal((BATCH, STEPS, HIDDEN), dtype=np.float32)


def fdl_lstm(quick: bool) -> Run:
    import functional_dl as fdl

    x, dy = _data()
    layer = fdl.layers.lstm(HIDDEN)
    _, params = layer.init(fdl.random.key(0), (None, STEPS, FEATURES))

    def run() -> object:
        _, cache = layer.forward(params, x)
        return layer.backward(params, cache, dy)

    return run


def torch_lstm(quick: bool) -> Run:
    import torch

    x_np, dy_np = _data()
    x = torch.from_numpy(x_np).requires_grad_(True)
    dy = torch.from_numpy(dy_np)
    torch.manual_seed(0)
    net = torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True)

    def run() -> object:
        x.grad = None
        net.zero_grad(set_to_none=True)
        y, _ = net(x)
        y.backward(dy)
        return x.grad

    return run


BUILDERS: dict[str, Callable[[bool], Run]] = {"functional_dl": fdl_lstm, "torch": torch_lstm}
