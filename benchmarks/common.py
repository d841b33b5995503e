"""Pieces several workloads share: synthetic data and one classifier training step per framework.

Every builder returns ``run``, a zero-argument function doing one unit of work (a training step,
an epoch, a forward and backward pass); the worker times calls of it. Frameworks are imported
inside the builders so that each worker process loads only its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

    import functional_dl as fdl

Run = Callable[[], object]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class Unsupported(Exception):
    """A builder's framework cannot run this workload; the message says why."""


def classification_data(shape: tuple[int, ...], classes: int, seed: int = 0) -> tuple[F32, I64]:
    """Standard-normal float32 inputs of ``shape`` (batch first) and uniform integer labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    return x, rng.integers(0, classes, shape[0])


def fdl_train_step(net: fdl.Layer[Any], x: F32, y: I64, opt: fdl.optim.Optimizer[Any]) -> Run:
    """One ``fdl.train.train_step`` (forward, softmax cross-entropy, backward, ``opt``) per call."""
    import functional_dl as fdl

    _, params = net.init(fdl.random.key(0), (None, *x.shape[1:]))
    step = fdl.train.train_step(net, fdl.losses.softmax_cross_entropy, opt)
    box = [fdl.train.init_train_state(opt, params)]
    key = fdl.random.key(1)

    def run() -> object:
        box[0], logs = step(box[0], (x, y), key)
        return logs

    return run


def torch_train_step(
    model: torch.nn.Module, x: F32, y: I64, make_opt: Callable[[Any], torch.optim.Optimizer]
) -> Run:
    """The same step in PyTorch: ``zero_grad``, cross-entropy of ``model(x)``, ``backward``, ``step``."""
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = make_opt(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    return run
