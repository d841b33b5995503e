"""Regularisation against over-fitting: an L2 penalty and dropout, with train and test curves.

Run it with ``python examples/regularisation.py`` (plots need matplotlib).
It is also a notebook: see the README's "Notebooks" section.
"""

# %% [markdown]
# # Regularisation against over-fitting: an L2 penalty and dropout, with train and test curves
#
# A wide network (2 -> 128 -> 128 -> 1, ReLU) trained long on only 40 noisy samples of the two-moons
# problem fits the noise: its training loss goes to zero while its test loss, after an early minimum,
# climbs. Two classic remedies, each trained from the same weights on the same batches:
#
# * **L2 penalty** (loss-side weight decay): minimise `J + (lambda / 2) sum_l ||w_l||^2` over the
#   weights (not the biases); its gradient adds `lambda w` to `dJ/dw`, pulling weights to zero.
#   Here it is `functional_dl.regularizers.l2_penalty`, passed to `train.fit` as `penalty=`.
# * **Dropout** (`layers.dropout(rate)`): during training each hidden unit is zeroed with
#   probability `rate` and the survivors scaled by `1 / (1 - rate)`; at evaluation the layer is
#   the identity. The network cannot rely on any single unit, which acts like averaging many
#   thinned networks.
#
# The script prints, for each variant, the final training and test loss and accuracy and the test
# loss's gap to the training loss, and plots the train (solid) and test (dashed) loss curves and
# each variant's decision boundary over the plane.

# %%
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _datasets import two_moons
from _notebook import parse_args
from _plots import decision_boundaries, line_plot, paired_styles

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, train

L2_STRENGTH = 3e-3
DROPOUT_RATE = 0.5


# %%
class Curves(NamedTuple):
    """Per-epoch losses and final scores of one variant."""

    train_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    train_accuracy: float
    test_accuracy: float
    boundary: fdl.Array | None = None  # (rows, cols) probability of class 1 over the plotting grid


class Plane(NamedTuple):
    """The training points and a grid over the plane around them, for decision boundaries."""

    x: fdl.Array  # (n_train, 2)
    y: fdl.Array  # (n_train, 1)
    grid: tuple[fdl.Array, fdl.Array]  # (xx, yy), each (rows, cols)


def plane(x: fdl.Array, y: fdl.Array, steps: int = 80) -> Plane:
    """A ``steps x steps`` grid covering the points with a margin."""
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    return Plane(x, y, (xx.astype(x.dtype), yy.astype(x.dtype)))


# %%
def build_network(dropout: float, width: int = 128) -> fdl.Layer[Any]:
    """Two wide ReLU hidden layers, each followed by dropout when ``dropout > 0``."""
    hidden: list[fdl.Layer[Any]] = []
    for _ in range(2):
        hidden += [L.dense(width), L.relu()]
        if dropout > 0:
            hidden.append(L.dropout(dropout))
    return fdl.serial(*hidden, L.dense(1))


# %%
def variants() -> dict[str, tuple[float, train.Penalty | None]]:
    """Name -> (dropout rate, penalty)."""
    l2 = partial(fdl.regularizers.l2_penalty, strength=L2_STRENGTH, mask=optim.weights_only)
    return {
        "no regularisation": (0.0, None),
        f"L2 (lambda {L2_STRENGTH:g})": (0.0, l2),
        f"dropout {DROPOUT_RATE:g}": (DROPOUT_RATE, None),
    }


# %%
def make_data(
    n_train: int = 40, seed: int = 0
) -> tuple[tuple[fdl.Array, fdl.Array], tuple[fdl.Array, fdl.Array]]:
    """``n_train`` noisy two-moons training samples and 500 test samples, from ``key(seed)``."""
    data_key = fdl.random.split(fdl.random.key(seed), 3)[0]
    x, y = two_moons(data_key, n=n_train + 500, noise=0.35, dtype=np.float32)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


# %%
def run(epochs: int = 200, n_train: int = 40, lr: float = 3e-3, seed: int = 0) -> dict[str, Curves]:
    """Train each variant on the same small data set; evaluate on a large held-out set.

    Each result also holds the variant's probability of class 1 over :func:`plane`'s grid.
    """
    _, init_key, fit_key = fdl.random.split(fdl.random.key(seed), 3)
    train_set, test_set = make_data(n_train, seed)
    loss = losses.sigmoid_binary_cross_entropy
    accuracy = {"accuracy": metrics.accuracy}
    results: dict[str, Curves] = {}
    grid = plane(*train_set).grid
    grid_points = np.stack([grid[0].ravel(), grid[1].ravel()], axis=1)
    for name, (rate, penalty) in variants().items():
        net = build_network(rate)
        _, params = net.init(init_key, (None, 2))  # dropout has no params: the same weights for all
        opt = optim.adam(lr)
        fitted = train.fit(
            net,
            loss,
            opt,
            train.init_train_state(opt, params),
            train_set,
            key=fit_key,
            epochs=epochs,
            batch_size=n_train,
            penalty=penalty,
            callbacks=[train.validation(net, loss, test_set, metrics=accuracy)],
            progress="none",
        )
        final = train.evaluate(net, loss, fitted.train_state.params, train_set, metrics=accuracy)
        logits = train.predict(net, fitted.train_state.params, grid_points)
        results[name] = Curves(
            tuple(fitted.history["loss"]),
            tuple(fitted.history["val_loss"]),
            final["accuracy"],
            fitted.history["val_accuracy"][-1],
            L.sigmoid().forward({}, logits)[0].reshape(grid[0].shape),  # the overflow-free sigmoid
        )
    return results


# %%
def report(results: dict[str, Curves], out: Path, points: Plane | None = None) -> None:
    """Print the table and save the loss curves and, given the training ``points``, the boundaries."""
    print(f"{'variant':<22}{'train loss':>11}{'test loss':>11}{'gap':>8}{'train acc':>11}{'test acc':>10}")
    for name, c in results.items():
        gap = c.test_loss[-1] - c.train_loss[-1]
        print(
            f"{name:<22}{c.train_loss[-1]:>11.4f}{c.test_loss[-1]:>11.4f}{gap:>8.3f}"
            f"{c.train_accuracy:>11.3f}{c.test_accuracy:>10.3f}"
        )
    curves = {f"{n} (train)": c.train_loss for n, c in results.items()}
    curves.update({f"{n} (test)": c.test_loss for n, c in results.items()})
    saved = line_plot(
        out / "regularisation.png",
        curves,
        title="Over-fitting 40 samples: train (solid) and test (dashed) loss",
        xlabel="epoch",
        ylabel="binary cross-entropy",
        log_y=True,
        styles=paired_styles(list(results)),
    )
    if saved is not None:
        print(f"saved {saved}")
    boundaries = {n: c.boundary for n, c in results.items() if c.boundary is not None}
    if points is not None and boundaries:
        drawn = decision_boundaries(
            out / "regularisation_boundaries.png", points.x, points.y, points.grid, boundaries,
            title="Decision boundaries after training on 40 samples",
        )  # fmt: skip
        if drawn is not None:
            print(f"saved {drawn}")


# %%
def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="a few epochs, for tests")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parse_args(parser)
    results = run(epochs=5 if args.smoke else args.epochs)
    report(results, args.out, plane(*make_data()[0]))


# %%
if __name__ == "__main__":
    main()
