"""A small network built twice, with functional_dl and with torch.nn, sharing its weights by key.

Used to compare optimizer trajectories on real gradients: each side computes its own gradients
from its own parameters at every step, so the two runs only agree if both the gradients and the
optimizer updates agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.types import Array, Params

N_IN, N_HIDDEN, N_OUT, BATCH = 4, 6, 3, 8
_RENAME = {"w": "weight", "b": "bias"}


def data() -> tuple[Array, Array]:
    """A fixed float64 regression batch ``(x, target)``."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(BATCH, N_IN)), rng.normal(size=(BATCH, N_OUT))


NET = fdl.serial(L.dense(N_HIDDEN, dtype=np.float64), L.tanh(), L.dense(N_OUT, dtype=np.float64))


def init_params() -> Params:
    """The network's float64 params with non-zero biases (so that weight decay touches them)."""
    _, params = NET.init(fdl.random.key(3), (None, N_IN))
    rng = np.random.default_rng(1)
    return {k: v + 0.1 * rng.normal(size=v.shape) if k.endswith("b") else v for k, v in params.items()}


def grads(params: Params) -> dict[str, Array]:
    """Gradients of ``L = 0.5 * sum((net(x) - target)^2) / batch`` by functional_dl's backward."""
    x, target = data()
    y, cache = NET.forward(params, x)
    _, g = NET.backward(params, cache, (y - target) / BATCH)
    return dict(g)


def torch_key(key: str) -> str:
    """``"0.w"`` -> ``"0.weight"``: the torch.nn.Sequential state_dict name."""
    head, _, leaf = key.rpartition(".")
    return f"{head}.{_RENAME[leaf]}"


def torch_model(params: Params) -> Any:
    """The same network in torch, float64, with the weights copied by key."""
    import torch

    model = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HIDDEN, dtype=torch.float64),
        torch.nn.Tanh(),
        torch.nn.Linear(N_HIDDEN, N_OUT, dtype=torch.float64),
    )
    model.load_state_dict({torch_key(k): torch.tensor(np.array(v)) for k, v in params.items()})
    return model


def torch_params(model: Any) -> dict[str, Array]:
    """The torch model's params under functional_dl's keys."""
    back = {torch_key(k): k for k in ("0.w", "0.b", "2.w", "2.b")}
    return {back[k]: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def torch_step(model: Any, opt: Any, after: Callable[[], None] | None = None) -> None:
    """One torch optimizer step on the same loss."""
    import torch

    x, target = data()
    opt.zero_grad()
    loss = 0.5 * ((model(torch.tensor(x)) - torch.tensor(target)) ** 2).sum() / BATCH
    loss.backward()
    opt.step()
    if after is not None:
        after()
