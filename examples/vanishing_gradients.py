"""Vanishing and exploding gradients: why the activation and the initialisation of a deep net matter.

Run it with ``python examples/vanishing_gradients.py`` (plots need matplotlib).
It is also a notebook: see the README's "Notebooks" section.
"""

# %% [markdown]
# # Vanishing and exploding gradients: why the activation and the initialisation of a deep net matter
#
# Back-propagation through a dense layer `a[l] = g(a[l-1] @ w[l].T + b[l])` multiplies the incoming
# gradient by `g'(z[l])` and then by `w[l]`:
#
# ```
# da[l-1] = (da[l] * g'(z[l])) @ w[l]
# ```
#
# so across `L` layers the gradient is scaled by roughly `(|g'| * sqrt(n) * std(w))^L`. Three deep
# networks (the same depth and width) show the three regimes:
#
# * **sigmoid, naive init** `w ~ N(0, 0.01^2)` (the "multiply by 0.01" of many first courses):
#   `sigmoid' <= 0.25` and `sqrt(n) std(w)` is far below 1, so the factor per layer is tiny and
#   the first layers get gradients many orders of magnitude smaller than the last: they barely learn.
# * **ReLU, naive init** `w ~ N(0, 1)`: `relu'` is 0 or 1, but `sqrt(n / 2) std(w)` is well above
#   1, so gradients (and activations) grow geometrically towards the input: they explode.
# * **ReLU, He init** `w ~ N(0, 2 / n_in)` (He et al., 2015): chosen so that `sqrt(n / 2) std(w) = 1`;
#   gradient norms stay of the same order in every layer.
#
# The script prints, for every dense layer of the three networks, the norm of the gradient arriving at
# its output, `||dL/dz[l]||` (the back-propagated signal, read with :func:`functional_dl.inspect.record`),
# and of its weight gradient `||dL/dw[l]||` (:func:`functional_dl.inspect.layer_stats`), plots both on
# a log scale, then trains the sigmoid/naive and ReLU/He networks with the same plain SGD and compares
# their loss curves. (With ReLU and `N(0, 1)` the weight gradients are huge in every layer rather
# than growing towards the input: `dL/dw[l] = dz[l]^T a[l-1]`, and the activations `a` grow
# forwards as fast as `dz` grows backwards.)

# %%
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _notebook import parse_args
from _plots import line_plot

import functional_dl as fdl
from functional_dl import inspect, losses, metrics, optim, train
from functional_dl import layers as L
from functional_dl.initializers import Initializer, he_normal, normal

CONFIGS: dict[str, tuple[str, Initializer]] = {
    "sigmoid, naive N(0, 0.01^2)": ("sigmoid", normal(0.01)),
    "relu, naive N(0, 1)": ("relu", normal(1.0)),
    "relu, He N(0, 2/n_in)": ("relu", he_normal()),
}


# %%
class Result(NamedTuple):
    """Per-layer gradient norms at initialisation and training curves."""

    grad_norms: dict[str, Norms]  # config -> gradient norms of each dense layer, input side first
    losses: dict[str, tuple[float, ...]]  # config -> training loss per epoch (trained configs only)
    accuracies: dict[str, float]  # config -> final training accuracy


# %%
def make_data(key: fdl.Key, n: int = 512, dim: int = 16) -> tuple[fdl.Array, fdl.Array]:
    """A binary task: the label is whether a fixed random direction has a positive projection."""
    kx, kw = fdl.random.split(key)
    x = fdl.random.normal(kx, (n, dim))
    direction = fdl.random.normal(kw, (dim,))
    return x, (x @ direction > 0).astype(np.float32).reshape(n, 1)


# %%
def build_network(activation: str, w_init: Initializer, depth: int, width: int) -> fdl.Layer[Any]:
    """``depth`` hidden layers of ``width`` units with ``activation``, then one output logit."""
    act = L.sigmoid if activation == "sigmoid" else L.relu
    hidden = [layer for _ in range(depth) for layer in (L.dense(width, w_init=w_init), act())]
    return fdl.serial(*hidden, L.dense(1, w_init=w_init))


# %%
class Norms(NamedTuple):
    """Gradient norms of each dense layer, input side first."""

    weights: tuple[float, ...]  # ||dL/dw[l]||
    signal: tuple[float, ...]  # ||dL/dz[l]||, the gradient arriving at the layer's output


# %%
def gradient_norms(net: fdl.Layer[Any], params: fdl.Params, x: fdl.Array, y: fdl.Array) -> Norms:
    """Per-layer gradient norms from one forward and backward pass (:func:`inspect.record`)."""
    seen = inspect.record(net, losses.sigmoid_binary_cross_entropy, params, x, y)
    weights = {k: v for k, v in params.items() if k.endswith(".w")}
    dense_paths = [k.rpartition(".")[0] for k in weights]
    return Norms(
        tuple(row.grad_norm for row in inspect.layer_stats(weights, seen.grads)),
        tuple(float(np.linalg.norm(seen.output_grads[p])) for p in dense_paths),
    )


# %%
def run(depth: int = 10, width: int = 64, epochs: int = 30, lr: float = 0.1, seed: int = 0) -> Result:
    """Measure gradient norms for every configuration and train the two that can be trained."""
    data_key, init_key, fit_key = fdl.random.split(fdl.random.key(seed), 3)
    x, y = make_data(data_key)
    norms: dict[str, Norms] = {}
    curves: dict[str, tuple[float, ...]] = {}
    accuracies: dict[str, float] = {}
    for name, (activation, w_init) in CONFIGS.items():
        net = build_network(activation, w_init, depth, width)
        _, params = net.init(init_key, (None, x.shape[1]))
        norms[name] = gradient_norms(net, params, x[:128], y[:128])
        if "naive N(0, 1)" in name:
            continue  # exploding activations overflow the loss within a few steps: nothing to plot
        opt = optim.sgd(lr)
        result = train.fit(
            net,
            losses.sigmoid_binary_cross_entropy,
            opt,
            train.init_train_state(opt, params),
            (x, y),
            key=fit_key,
            epochs=epochs,
            batch_size=64,
            metrics={"accuracy": metrics.accuracy},
            progress="none",
        )
        curves[name] = result.history["loss"]
        accuracies[name] = result.history["accuracy"][-1]
    return Result(norms, curves, accuracies)


# %%
def _table(title: str, columns: dict[str, tuple[float, ...]]) -> None:
    print(title)
    print(f"{'layer':>5}  " + "  ".join(f"{n:>28}" for n in columns))
    for i in range(len(next(iter(columns.values())))):
        print(f"{i + 1:>5}  " + "  ".join(f"{col[i]:>28.3e}" for col in columns.values()))


# %%
def report(result: Result, out: Path) -> None:
    """Print the tables and save the plots."""
    signal = {n: g.signal for n, g in result.grad_norms.items()}
    weights = {n: g.weights for n, g in result.grad_norms.items()}
    _table("||dL/dz|| arriving at each dense layer at initialisation (layer 1 is next to the input)", signal)
    _table("||dL/dw|| of each dense layer at initialisation", weights)
    for n, g in result.grad_norms.items():
        print(f"{n}: ||dL/dz|| layer 1 / last layer = {g.signal[0] / g.signal[-1]:.3e}")
    for n, curve in result.losses.items():
        print(
            f"{n}: loss {curve[0]:.4f} -> {curve[-1]:.4f}, final training accuracy {result.accuracies[n]:.3f}"
        )
    layers = range(1, len(next(iter(signal.values()))) + 1)
    for saved in (
        line_plot(
            out / "vanishing_gradients_signal.png",
            signal,
            title="Gradient arriving at each layer, at initialisation",
            xlabel="layer (1 = input side)",
            ylabel="||dL/dz||",
            log_y=True,
            x=layers,
        ),
        line_plot(
            out / "vanishing_gradients_weights.png",
            weights,
            title="Weight gradient of each layer, at initialisation",
            xlabel="layer (1 = input side)",
            ylabel="||dL/dw||",
            log_y=True,
            x=layers,
        ),
        line_plot(
            out / "vanishing_gradients_training.png",
            result.losses,
            title="Training loss, plain SGD",
            xlabel="epoch",
            ylabel="binary cross-entropy",
        ),
    ):
        if saved is not None:
            print(f"saved {saved}")


# %%
def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="a short run, for tests")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parse_args(parser)
    result = run(depth=args.depth, width=args.width, epochs=2 if args.smoke else args.epochs)
    report(result, args.out)


# %%
if __name__ == "__main__":
    main()
