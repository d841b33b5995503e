"""Four optimizers on the same problem, from the same weights, on the same batches.

Run it with ``python examples/optimizers_compared.py`` (plots need matplotlib).
It is also a notebook: see the README's "Notebooks" section.
"""

# %% [markdown]
# # Four optimizers on the same problem, from the same weights, on the same batches
#
# A 2 -> 32 -> 32 -> 1 ReLU network learns the two-moons classification with each optimizer in turn.
# Everything except the optimizer is fixed: the initial weights, the data, and the order of the
# mini-batches (`train.fit` derives every shuffle from the same key). Update rules, with `g` the
# gradient and `lr` the learning rate:
#
# ```
# SGD        p <- p - lr g
# momentum   v <- mu v + g;  p <- p - lr v                               (PyTorch's form)
# Adam       m <- b1 m + (1 - b1) g;  s <- b2 s + (1 - b2) g^2
#            p <- p - lr m_hat / (sqrt(s_hat) + eps)   with bias-corrected m_hat, s_hat
# AdamW      Adam, plus a decoupled decay  p <- p - lr wd p   (not added to g, so not rescaled)
# ```
#
# Adam adapts the step to each parameter's gradient scale, which is why it makes progress early here;
# momentum accelerates SGD along consistent directions. The script prints each optimizer's final
# training loss and test accuracy and plots the per-epoch training and test losses.

# %%
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _datasets import two_moons
from _notebook import parse_args
from _plots import line_plot, paired_styles

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, train


# %%
def optimizers(lr_sgd: float = 0.1, lr_adam: float = 0.01) -> dict[str, optim.Optimizer[Any]]:
    """The four optimizers compared."""
    return {
        "SGD": optim.sgd(lr_sgd),
        "momentum 0.9": optim.sgd(lr_sgd, momentum=0.9),
        "Adam": optim.adam(lr_adam),
        "AdamW (wd 0.01)": optim.adamw(lr_adam, weight_decay=0.01),
    }


# %%
class Comparison(NamedTuple):
    """Per-epoch histories and final scores of each optimizer."""

    train_loss: dict[str, tuple[float, ...]]
    test_loss: dict[str, tuple[float, ...]]
    test_accuracy: dict[str, float]


# %%
def build_network() -> fdl.Layer[Any]:
    """The shared architecture."""
    return fdl.serial(L.dense(32), L.relu(), L.dense(32), L.relu(), L.dense(1))


# %%
def run(epochs: int = 40, batch_size: int = 32, seed: int = 0) -> Comparison:
    """Train the same network with each optimizer; return histories and test accuracies."""
    data_key, init_key, fit_key = fdl.random.split(fdl.random.key(seed), 3)
    x, y = two_moons(data_key, n=600, noise=0.2, dtype=np.float32)
    (x_train, x_test), (y_train, y_test) = np.split(x, [400]), np.split(y, [400])
    net = build_network()
    _, params = net.init(init_key, (None, 2))
    loss = losses.sigmoid_binary_cross_entropy
    train_loss: dict[str, tuple[float, ...]] = {}
    test_loss: dict[str, tuple[float, ...]] = {}
    accuracy: dict[str, float] = {}
    for name, opt in optimizers().items():
        result = train.fit(
            net,
            loss,
            opt,
            train.init_train_state(opt, params),
            (x_train, y_train),
            key=fit_key,
            epochs=epochs,
            batch_size=batch_size,
            callbacks=[train.validation(net, loss, (x_test, y_test), metrics={"accuracy": metrics.accuracy})],
            progress="none",
        )
        train_loss[name] = result.history["loss"]
        test_loss[name] = result.history["val_loss"]
        accuracy[name] = result.history["val_accuracy"][-1]
    return Comparison(train_loss, test_loss, accuracy)


# %%
def report(result: Comparison, out: Path) -> None:
    """Print the table and save the plot."""
    print(f"{'optimizer':<18}{'final train loss':>18}{'final test loss':>17}{'test accuracy':>15}")
    for name, curve in result.train_loss.items():
        print(
            f"{name:<18}{curve[-1]:>18.4f}{result.test_loss[name][-1]:>17.4f}{result.test_accuracy[name]:>15.3f}"
        )
    curves = {f"{n} (train)": c for n, c in result.train_loss.items()}
    curves.update({f"{n} (test)": c for n, c in result.test_loss.items()})
    saved = line_plot(
        out / "optimizers_compared.png",
        curves,
        title="Same network, same batches: four optimizers",
        xlabel="epoch",
        ylabel="binary cross-entropy",
        log_y=True,
        x=range(1, len(next(iter(result.train_loss.values()))) + 1),
        styles=paired_styles(list(result.test_loss)),
    )
    if saved is not None:
        print(f"saved {saved}")


# %%
def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="two epochs, for tests")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parse_args(parser)
    report(run(epochs=2 if args.smoke else args.epochs), args.out)


# %%
if __name__ == "__main__":
    main()
