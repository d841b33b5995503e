"""Small training runs shared by the distributed tests: module-level, so workers can unpickle them."""

from __future__ import annotations

from typing import Any

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, train
from functional_dl.distributed import Hparams
from functional_dl.train import FitResult
from functional_dl.types import Array, IntArray, Layer, Params


def blobs(n: int = 96, seed: int = 0) -> tuple[Array, IntArray]:
    """``n`` float64 points ``(n, 6)`` in three classes, labels ``(n,)``."""
    x = fdl.random.normal(fdl.random.key(seed), (n, 6), np.float64)
    y = (np.argmax(x[:, :3], axis=1)).astype(np.int64)
    return x, y


def images(n: int = 40, seed: int = 0) -> tuple[Array, IntArray]:
    """``n`` float64 images ``(n, 1, 6, 6)`` in two classes, labels ``(n,)``."""
    x = fdl.random.normal(fdl.random.key(seed), (n, 1, 6, 6), np.float64)
    y = (x[:, 0, :3].mean(axis=(1, 2)) > 0).astype(np.int64)
    return x, y


def mlp(dropout: float) -> Layer[Any]:
    """A 6-16-3 MLP, with dropout after the hidden layer when ``dropout > 0``."""
    drop: list[Layer[Any]] = [L.dropout(dropout)] if dropout else []
    return fdl.serial(L.dense(16), L.relu(), *drop, L.dense(3))


def conv_bn(dropout: float) -> Layer[Any]:
    """conv 4 3x3, batch norm, relu, max pool 2, flatten, (dropout), dense 2."""
    drop: list[Layer[Any]] = [L.dropout(dropout)] if dropout else []
    return fdl.serial(
        L.conv2d(4, 3, padding=1), L.batch_norm2d(), L.relu(), L.max_pool2d(2), L.flatten(), *drop, L.dense(2)
    )


def init64(net: Layer[Any], in_shape: tuple[int | None, ...]) -> tuple[Params, Params]:
    """float64 params and buffers of ``net``."""
    _, params, buffers = net.init_with_buffers(fdl.random.key(1), in_shape)
    return fdl.params.cast(params, np.float64), fdl.params.cast(buffers, np.float64) if buffers else buffers


def trial(hparams: Hparams, *, epochs: int = 3) -> FitResult[Any]:
    """One sweep trial: the MLP on the blobs with ``lr``, ``weight_decay`` and ``seed``."""
    x, y = blobs()
    net = mlp(0.2)
    _, params = net.init(fdl.random.key(int(hparams["seed"])), (None, 6))
    opt = optim.adamw(float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]))
    start = train.init_train_state(opt, fdl.params.cast(params, np.float64))
    return train.fit(
        net, losses.softmax_cross_entropy, opt, start, (x, y), key=fdl.random.key(int(hparams["seed"]) + 100),
        epochs=epochs, batch_size=16, metrics={"accuracy": metrics.accuracy}, progress="none",
    )  # fmt: skip


def failing_trial(hparams: Hparams) -> FitResult[Any]:
    """A trial whose run raises the library's error for a bad label."""
    x, y = blobs()
    if hparams["seed"] == 1:
        losses.softmax_cross_entropy(x[:, :3], y + 7)
    return trial(hparams, epochs=1)


def slow_trial(hparams: Hparams) -> FitResult[Any]:
    """A trial long enough (``hparams["epochs"]`` epochs) for a worker to be killed while it runs."""
    return trial(hparams, epochs=int(hparams["epochs"]))
