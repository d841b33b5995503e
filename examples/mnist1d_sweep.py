"""A hyperparameter sweep of the MNIST-1D CNN on a local Dask cluster: learning rate x weight decay x 3 seeds.

    python examples/mnist1d_sweep.py                 # 3 x 3 x 3 = 27 runs of 20 epochs on 2 workers
    python examples/mnist1d_sweep.py --smoke         # 2 x 1 x 3 short runs on a slice of the data
    python examples/mnist1d_sweep.py --workers 4 --epochs 40

Each trial is one ``train.fit`` of the paper's CNN (``mnist1d_models.build("cnn")``) with AdamW,
validated on the test set after every epoch. ``distributed.sweep`` spreads the trials over the
workers of a ``LocalCluster`` (the same code runs on a real cluster: pass its client instead), then
collects every run's history, final logs and a checkpoint of its final training state into one
table. Training is pure, so a trial whose worker is lost is re-run and gives the same numbers.

Prints the results table, one line per (learning rate, weight decay) with the mean and spread of the
final validation accuracy over the seeds, and saves the mean validation-accuracy curves to
``outputs/mnist1d_sweep.png`` (and the checkpoints to ``outputs/mnist1d_sweep/``).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from _plots import line_plot
from mnist1d_models import Data, as_input, build, make_data

import functional_dl as fdl
from functional_dl import distributed, losses, metrics, train
from functional_dl.distributed import Hparams, SweepResult

LEARNING_RATES = (3e-3, 1e-2, 3e-2)
WEIGHT_DECAYS = (0.0, 1e-2, 1e-1)
SEEDS = (0, 1, 2)
BATCH_SIZE = 100


def run_trial(hparams: Hparams, *, data: Data, epochs: int) -> train.FitResult[Any]:
    """One run: the CNN trained with AdamW at ``hparams`` (``lr``, ``weight_decay``, ``seed``)."""
    net, in_shape = build("cnn")
    seed = int(hparams["seed"])
    _, params = net.init(fdl.random.key(seed), in_shape)
    opt = fdl.optim.adamw(float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]))
    x, x_test = as_input("cnn", data.x), as_input("cnn", data.x_test)
    loss = losses.softmax_cross_entropy
    acc = {"accuracy": metrics.accuracy}
    return train.fit(
        net, loss, opt, train.init_train_state(opt, params), (x, data.y), key=fdl.random.key(1000 + seed),
        epochs=epochs, batch_size=BATCH_SIZE, metrics=acc, progress="none",
        callbacks=[train.validation(net, loss, (x_test, data.y_test), metrics=acc, batch_size=1000)],
    )  # fmt: skip


def summary(results: Sequence[SweepResult]) -> str:
    """Final validation accuracy per (lr, weight decay): mean and standard deviation over the seeds."""
    groups: dict[tuple[float, float], list[float]] = {}
    for r in results:
        hp = r.trial.hparams
        key = (float(hp["lr"]), float(hp["weight_decay"]))
        groups.setdefault(key, []).append(r.final["val_accuracy"])
    lines = [f"{'lr':>8}  {'weight_decay':>12}  final val_accuracy over the seeds (mean +- sd)"]
    for (lr, wd), accs in groups.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        lines.append(f"{lr:8.0e}  {wd:12.0e}  {100 * statistics.mean(accs):5.1f}% +- {100 * sd:.1f}")
    return "\n".join(lines)


def curves(results: Sequence[SweepResult]) -> dict[str, list[float]]:
    """Mean validation accuracy per epoch over the seeds, one series per (lr, weight decay)."""
    groups: dict[str, list[tuple[float, ...]]] = {}
    for r in results:
        hp = r.trial.hparams
        name = f"lr={hp['lr']:g}, wd={hp['weight_decay']:g}"
        groups.setdefault(name, []).append(r.history["val_accuracy"])
    return {
        name: [100 * statistics.mean(epoch) for epoch in zip(*runs, strict=True)]
        for name, runs in groups.items()
    }


def main(argv: Sequence[str] | None = None) -> tuple[SweepResult, ...]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="6 runs of 2 epochs on 500 samples, for CI")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parser.parse_args(argv)

    data = make_data()
    lrs: tuple[float, ...] = LEARNING_RATES
    wds: tuple[float, ...] = WEIGHT_DECAYS
    epochs: int = args.epochs
    if args.smoke:
        data = Data(data.x[:500], data.y[:500], data.x_test[:100], data.y_test[:100])
        lrs, wds, epochs = (1e-2, 3e-2), (1e-2,), 2
    trials = distributed.grid(lr=lrs, weight_decay=wds, seed=SEEDS)
    print(f"{len(trials)} trials of {epochs} epochs on {args.workers} workers", flush=True)
    run = partial(run_trial, data=data, epochs=epochs)
    with distributed.local_cluster(args.workers) as client:
        results = distributed.sweep(
            run, trials, distributed.dask_executor(client), checkpoint_dir=str(args.out / "mnist1d_sweep")
        )
    print(distributed.format_table(results, ["loss", "accuracy", "val_loss", "val_accuracy"]))
    print()
    print(summary(results))
    args.out.mkdir(parents=True, exist_ok=True)
    path = line_plot(
        args.out / "mnist1d_sweep.png", curves(results), title="MNIST-1D CNN: mean over 3 seeds",
        xlabel="epoch", ylabel="validation accuracy (%)", x=range(1, epochs + 1),
    )  # fmt: skip
    if path is not None:
        print(f"saved {path}")
    return results


if __name__ == "__main__":
    main()
