"""A training step of the MNIST-1D paper's CNN (Greydanus, 2020; ``examples/mnist1d_models.py``).

Input ``(100, 1, 40)`` float32, three ``conv1d`` layers of 25 channels (kernels 5, 3, 3; stride 2;
padding 1) with ReLU, so the length goes 40 -> 19 -> 10 -> 5, flatten (125) and ``dense(10)``;
softmax cross-entropy and Adam (lr 1e-2), on a fixed synthetic batch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from benchmarks.common import Run, classification_data, fdl_train_step, torch_train_step

BATCH, LENGTH, CHANNELS, KERNELS, LR = 100, 40, 25, (5, 3, 3), 1e-2


def fdl_cnn(quick: bool) -> Run:
    import functional_dl as fdl
    from functional_dl import layers as L

    convs = [part for k in KERNELS for part in (L.conv1d(CHANNELS, k, stride=2, padding=1), L.relu())]
    net = fdl.serial(*convs, L.flatten(), L.dense(10))
    return fdl_train_step(net, *classification_data((BATCH, 1, LENGTH), 10), fdl.optim.adam(LR))


def torch_cnn(quick: bool) -> Run:
    import torch
    from torch import nn

    torch.manual_seed(0)
    convs: list[nn.Module] = []
    for i, k in enumerate(KERNELS):
        convs += [nn.Conv1d(1 if i == 0 else CHANNELS, CHANNELS, k, stride=2, padding=1), nn.ReLU()]
    model = nn.Sequential(*convs, nn.Flatten(), nn.Linear(CHANNELS * 5, 10))
    make_opt = partial(torch.optim.Adam, lr=LR)
    return torch_train_step(model, *classification_data((BATCH, 1, LENGTH), 10), make_opt)


BUILDERS: dict[str, Callable[[bool], Run]] = {"functional_dl": fdl_cnn, "torch": torch_cnn}
