"""LeNet-style CNNs on ``(N, 1, 28, 28)`` float32 inputs and ten classes, trained with Adam.

* :data:`STEP`: one training step, batch 64, of ``conv 32 3x3 p1, relu, maxpool 2, conv 64 3x3
  p1, relu, maxpool 2, dense 10``.
* :data:`EPOCH`: one epoch of ``fdl.train.fit`` (shuffled batches of 64) of the 5x5 LeNet ``conv 16
  5x5 p2, relu, maxpool 2, conv 32 5x5 p2, relu, maxpool 2, dense 128, relu, dense 10`` on a fixed
  synthetic data set of :data:`EPOCH_SAMPLES` samples (60000 / 20, so 47 batches); PyTorch runs the
  same epoch as a plain loop over ``randperm`` batches. ``--quick`` uses 256 samples.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from benchmarks.common import F32, I64, Run, classification_data, fdl_train_step, torch_train_step

BATCH, LR = 64, 1e-3
EPOCH_SAMPLES, QUICK_SAMPLES = 3000, 256


def _fdl_net(five: bool) -> Any:
    import functional_dl as fdl
    from functional_dl import layers as L

    k, p, (c1, c2) = (5, 2, (16, 32)) if five else (3, 1, (32, 64))
    features: list[fdl.Layer[Any]] = [L.conv2d(c1, k, padding=p), L.relu(), L.max_pool2d(2)]
    features += [L.conv2d(c2, k, padding=p), L.relu(), L.max_pool2d(2), L.flatten()]
    head: list[fdl.Layer[Any]] = [L.dense(128), L.relu(), L.dense(10)] if five else [L.dense(10)]
    return fdl.serial(*features, *head)


def _torch_net(five: bool) -> Any:
    from torch import nn

    k, p, (c1, c2) = (5, 2, (16, 32)) if five else (3, 1, (32, 64))
    features = [nn.Conv2d(1, c1, k, padding=p), nn.ReLU(), nn.MaxPool2d(2)]
    features += [nn.Conv2d(c1, c2, k, padding=p), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    flat = c2 * 7 * 7
    head = [nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10)] if five else [nn.Linear(flat, 10)]
    return nn.Sequential(*features, *head)


def fdl_step(quick: bool) -> Run:
    import functional_dl as fdl

    return fdl_train_step(_fdl_net(False), *classification_data((BATCH, 1, 28, 28), 10), fdl.optim.adam(LR))


def torch_step(quick: bool) -> Run:
    import torch

    torch.manual_seed(0)
    make_opt = partial(torch.optim.Adam, lr=LR)
    return torch_train_step(_torch_net(False), *classification_data((BATCH, 1, 28, 28), 10), make_opt)


def _epoch_data(quick: bool) -> tuple[F32, I64]:
    return classification_data((QUICK_SAMPLES if quick else EPOCH_SAMPLES, 1, 28, 28), 10)


def fdl_epoch(quick: bool) -> Run:
    import functional_dl as fdl

    net, opt, (x, y) = _fdl_net(True), fdl.optim.adam(LR), _epoch_data(quick)
    _, params = net.init(fdl.random.key(0), (None, 1, 28, 28))
    loss = fdl.losses.softmax_cross_entropy
    fit = partial(fdl.train.fit, net, loss, opt, key=fdl.random.key(1), epochs=1, batch_size=BATCH)
    box = [fdl.train.init_train_state(opt, params)]
    box[0] = fit(box[0], (x[: 2 * BATCH], y[: 2 * BATCH]), progress="none").train_state  # warm-up

    def run() -> object:
        box[0] = fit(box[0], (x, y), progress="none").train_state
        return box[0]

    return run


def torch_epoch(quick: bool) -> Run:
    import torch

    torch.manual_seed(0)
    x_np, y_np = _epoch_data(quick)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = _torch_net(True)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(n: int) -> object:
        loss = None
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            rows = order[start : start + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            opt.step()
        return loss

    epoch(2 * BATCH)  # warm-up
    return partial(epoch, len(x))


STEP: dict[str, Callable[[bool], Run]] = {"functional_dl": fdl_step, "torch": torch_step}
EPOCH: dict[str, Callable[[bool], Run]] = {"functional_dl": fdl_epoch, "torch": torch_epoch}
