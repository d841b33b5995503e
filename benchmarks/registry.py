"""Every benchmark workload, one :class:`Workload` entry each: adding a workload is adding an entry.

A workload names, per framework, a builder ``(quick) -> run``: a module-level function (or a
``functools.partial`` of one) that sets the work up and returns a zero-argument ``run`` doing one
unit of it. ``quick`` asks for a smaller version where the full one would not fit a smoke run
(only the fit epoch and the Adam update shrink). A builder raises
:class:`~benchmarks.common.Unsupported` when its framework cannot do the workload; the report then
says why instead of timing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from benchmarks import adam, attention, conv2d, lenet, lstm, mlp, mnist1d_cnn
from benchmarks.common import Run

FRAMEWORKS = ("functional_dl", "torch", "numpy")
OURS = "functional_dl"


class Workload(NamedTuple):
    """One benchmark: what to build in each framework and how long to time it.

    A worker runs ``warmup`` untimed calls, then timed calls until it has made ``min_calls`` and
    spent ``budget_s`` seconds (at most ``max_calls``); it reports their median. The runner
    repeats that ``reps`` times per framework in fresh processes, rotating the order.
    """

    name: str  # for --only and in the JSON
    title: str  # one line: the shapes and the work
    unit: str  # what one call does: "step", "epoch", "call"
    builders: Mapping[str, Callable[[bool], Run]]  # framework -> builder(quick)
    threads: int = 2
    reps: int = 5
    warmup: int = 3
    min_calls: int = 5
    budget_s: float = 1.0
    max_calls: int = 1000
    breakdown: Callable[[int], None] | None = None  # prints ours next to plain NumPy, part by part


def heavy(name: str, title: str, unit: str, builders: Mapping[str, Callable[[bool], Run]]) -> Workload:
    """A workload whose calls take 0.1 s or more: 3 repetitions, 1 warm-up call, 3 timed calls."""
    return Workload(name, title, unit, builders, reps=3, warmup=1, min_calls=3)


WORKLOADS: tuple[Workload, ...] = (
    heavy(
        "conv2d",
        "conv2d forward+backward, 64x32x28x28 -> 64, 3x3, padding 1",
        "call",
        conv2d.builders(64),
    ),
    heavy(
        "conv2d_stride2",
        "conv2d forward+backward, 64x32x28x28 -> 64, 3x3, padding 1, stride 2",
        "call",
        conv2d.builders(64, stride=2),
    ),
    heavy(
        "conv2d_depthwise",
        "depthwise conv2d forward+backward, 64x32x28x28 -> 32, 3x3, padding 1, groups 32",
        "call",
        conv2d.builders(32, groups=32),
    ),
    heavy(
        "lenet_step",
        "LeNet train step, (64,1,28,28), conv 32 3x3, pool, conv 64 3x3, pool, dense 10; Adam",
        "step",
        lenet.STEP,
    ),
    Workload(
        "lenet5_fit_epoch",
        f"5x5 LeNet, train.fit epoch of {lenet.EPOCH_SAMPLES} synthetic samples, batch 64; Adam",
        "epoch",
        lenet.EPOCH,
        reps=3,
        warmup=0,
        min_calls=1,
        budget_s=0.0,
    ),
    Workload(
        "mlp_784",
        "MLP 784-512-512-10, batch 128, Adam (PyTorch fused)",
        "step",
        mlp.WIDE,
    ),
    Workload(
        "adam_10m",
        "Adam update alone, 10M parameters in 10 arrays (PyTorch fused)",
        "call",
        adam.BUILDERS,
    ),
    Workload(
        "mnist1d_cnn",
        "MNIST-1D CNN step, (100,1,40), 3 conv1d of 25 channels, dense 10; Adam",
        "step",
        mnist1d_cnn.BUILDERS,
    ),
    heavy(
        "lstm",
        f"LSTM forward+backward, batch {lstm.BATCH}, {lstm.STEPS} steps, {lstm.FEATURES} -> {lstm.HIDDEN}",
        "call",
        lstm.BUILDERS,
    ),
    heavy(
        "attention",
        f"multi-head attention forward+backward, batch {attention.BATCH}, {attention.STEPS} steps, "
        f"d_model {attention.D_MODEL}, {attention.HEADS} heads",
        "call",
        attention.BUILDERS,
    ),
    Workload(
        "mnist1d_mlp",
        "MNIST-1D MLP step, 40-100-100-10, batch 100, Adam, 1 thread",
        "step",
        mlp.MNIST1D,
        threads=1,
        breakdown=mlp.breakdown,
    ),
)


def by_name(name: str) -> Workload:
    """The workload called ``name``; ``KeyError`` lists the names if there is none."""
    for workload in WORKLOADS:
        if workload.name == name:
            return workload
    raise KeyError(f"no workload {name!r}; choose from {', '.join(w.name for w in WORKLOADS)}")
