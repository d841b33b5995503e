"""MNIST-1D (Greydanus, 2020): the paper's three models and training recipe, in functional_dl and PyTorch.

The data set: 4000 training and 1000 test signals of length 40, ten classes, generated offline by
the ``mnist1d`` package (``make_dataset(get_dataset_args())``, about 4 s).

The models, as in the paper's repository (``models.py``), all ending in 10 logits:

* logistic regression: ``dense(10)``;
* MLP ``40-100-100-10`` with ReLU;
* CNN: three ``conv1d`` layers of 25 channels (kernel 5, then 3 and 3; stride 2; padding 1) with
  ReLU, so the length goes 40 -> 19 -> 10 -> 5, then flatten (``25 * 5 = 125``) and ``dense(10)``;
* GRU: a bidirectional GRU of hidden size 6 over the 40 steps of one feature (the signal read as
  ``(n, 40, 1)``), its whole output sequence flattened (``40 * 2 * 6 = 480``) into ``dense(10)``.

Training, as the paper: Adam with learning rate ``1e-2``, batch 100, 6000 steps, softmax
cross-entropy; the figure is the test accuracy at the end. Initialisation follows PyTorch's
defaults in both frameworks: weights and biases uniform on ``+-1/sqrt(fan_in)``.

Mini-batches: each epoch of 40 batches is a permutation drawn from ``random.fold_in(key(seed),
epoch)``. :func:`batch_indices` is shared by both frameworks, so a PyTorch run and ours with the
same seed see exactly the same batches; they differ only in the initial weights (each framework
draws its own) and the order of float summation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

import functional_dl as fdl
from functional_dl import layers as L

MODELS = ("logistic", "mlp", "cnn", "gru")
GRU_HIDDEN = 6
LEARNING_RATE, BATCH_SIZE, STEPS = 1e-2, 100, 6000


class Data(NamedTuple):
    """MNIST-1D as float32 signals ``(n, 40)`` and integer labels ``(n,)``."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]


class RunResult(NamedTuple):
    """One training run: final test accuracy (in %) and wall time (s)."""

    test_accuracy: float
    seconds: float


def make_data() -> Data:
    """Generate the data set exactly as the paper's ``make_dataset(get_dataset_args())``."""
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    return Data(
        np.asarray(raw["x"], dtype=np.float32),
        np.asarray(raw["y"], dtype=np.int64),
        np.asarray(raw["x_test"], dtype=np.float32),
        np.asarray(raw["y_test"], dtype=np.int64),
    )


def save_data(data: Data, path: str) -> None:
    """Write the data set to an ``.npz`` file (so worker processes need not regenerate it)."""
    np.savez(path, **data._asdict())


def load_data(path: str) -> Data:
    """Read a data set written by :func:`save_data`."""
    with np.load(path, allow_pickle=False) as f:
        return Data(f["x"], f["y"], f["x_test"], f["y_test"])


def batch_indices(seed: int, step: int, n: int, batch_size: int = BATCH_SIZE) -> fdl.IntArray:
    """The sample indices of training step ``step``: batch ``step % k`` of epoch ``step // k``."""
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    order = fdl.random.permutation(fdl.random.fold_in(fdl.random.key(seed), epoch), n)
    return order[i * batch_size : (i + 1) * batch_size]


def as_input(model: str, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The CNN reads ``(n, 1, 40)`` (one channel), the GRU ``(n, 40, 1)`` (one feature per step)."""
    if model == "cnn":
        return x[:, None, :]
    return x[:, :, None] if model == "gru" else x


# ---- functional_dl ---------------------------------------------------------------------------


def _torch_like(fan_in: int) -> tuple[fdl.initializers.Initializer, fdl.initializers.Initializer]:
    """PyTorch's default initialisation: ``U(+-1/sqrt(fan_in))`` for weights and biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return fdl.initializers.uniform(bound), fdl.initializers.uniform(bound)


def _dense(n_out: int, fan_in: int) -> fdl.Layer[Any]:
    w_init, b_init = _torch_like(fan_in)
    return L.dense(n_out, w_init=w_init, b_init=b_init)


def _conv(channels: int, kernel: int, fan_in: int) -> fdl.Layer[Any]:
    w_init, b_init = _torch_like(fan_in)
    return L.conv1d(channels, kernel, stride=2, padding=1, w_init=w_init, b_init=b_init)


def build(model: str, channels: int = 25) -> tuple[fdl.Layer[fdl.combinators.SerialCache], fdl.Shape]:
    """The network and its input shape (``channels``: the CNN's width, 25 in the paper)."""
    if model == "logistic":
        return fdl.serial(_dense(10, 40)), (None, 40)
    if model == "mlp":
        return fdl.serial(_dense(100, 40), L.relu(), _dense(100, 100), L.relu(), _dense(10, 100)), (None, 40)
    if model == "cnn":
        c = channels
        layers = (_conv(c, 5, 1 * 5), L.relu(), _conv(c, 3, c * 3), L.relu(), _conv(c, 3, c * 3), L.relu())
        return fdl.serial(*layers, L.flatten(), _dense(10, c * 5)), (None, 1, 40)
    if model == "gru":  # the GRU starts U(+-1/sqrt(hidden)), PyTorch's default, by itself
        rnn = L.gru(GRU_HIDDEN, bidirectional=True)
        return fdl.serial(rnn, L.flatten(), _dense(10, 40 * 2 * GRU_HIDDEN)), (None, 40, 1)
    raise ValueError(f"unknown model {model!r}; choose from {MODELS}")


def accuracy(logits: npt.NDArray[np.floating[Any]], labels: npt.NDArray[np.int64]) -> float:
    """Percentage of rows whose largest logit is the label."""
    return 100.0 * float(np.mean(np.argmax(logits, axis=1) == labels))


def train_ours(model: str, data: Data, seed: int, steps: int = STEPS) -> RunResult:
    """Train one model with functional_dl; an explicit loop: forward, loss, backward, update."""
    start = time.perf_counter()
    net, in_shape = build(model)
    _, params = net.init(fdl.random.key(seed), in_shape)
    opt = fdl.optim.adam(LEARNING_RATE)
    state = opt.init(params)
    x, x_test = as_input(model, data.x), as_input(model, data.x_test)
    for step in range(steps):
        rows = batch_indices(seed, step, len(x))
        logits, cache = net.forward(state.params, x[rows])
        _, dlogits = fdl.losses.softmax_cross_entropy(logits, data.y[rows])
        _, grads = net.backward(state.params, cache, dlogits)
        state, _ = opt.update(state, grads)
    logits, _ = net.forward(state.params, x_test)
    return RunResult(accuracy(logits, data.y_test), time.perf_counter() - start)


# ---- PyTorch, the same models and recipe -----------------------------------------------------


def _torch_gru() -> Any:
    """The paper's GRU model: ``nn.GRU`` (bidirectional, batch first), its outputs flattened into a linear."""
    from torch import nn

    class GRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(1, GRU_HIDDEN, batch_first=True, bidirectional=True)
            self.linear = nn.Linear(40 * 2 * GRU_HIDDEN, 10)

        def forward(self, x: Any) -> Any:
            out, _ = self.rnn(x)
            return self.linear(out.reshape(out.shape[0], -1))

    return GRU()


def _torch_model(model: str) -> Any:
    import torch
    from torch import nn

    if model == "gru":
        return _torch_gru()
    if model == "logistic":
        return nn.Linear(40, 10)
    if model == "mlp":
        return nn.Sequential(
            nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
        )
    convs: list[torch.nn.Module] = []
    for i, kernel in enumerate((5, 3, 3)):
        convs += [nn.Conv1d(1 if i == 0 else 25, 25, kernel, stride=2, padding=1), nn.ReLU()]
    return nn.Sequential(*convs, nn.Flatten(), nn.Linear(125, 10))


def train_torch(model: str, data: Data, seed: int, steps: int = STEPS) -> RunResult:
    """Train one model with PyTorch (CPU, float32) on the same batches."""
    import torch

    start = time.perf_counter()
    torch.manual_seed(seed)
    net = _torch_model(model)
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(as_input(model, data.x))
    y = torch.from_numpy(data.y)
    for step in range(steps):
        rows = torch.from_numpy(batch_indices(seed, step, len(x)))
        loss = loss_fn(net(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = net(torch.from_numpy(as_input(model, data.x_test))).numpy()
    return RunResult(accuracy(logits, data.y_test), time.perf_counter() - start)


TRAINERS: dict[str, Callable[[str, Data, int, int], RunResult]] = {
    "functional_dl": train_ours,
    "torch": train_torch,
}
