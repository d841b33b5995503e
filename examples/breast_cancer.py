"""An L-layer binary classifier on real data: scikit-learn's breast-cancer set (569 tumours, 30 features).

Run it with ``python examples/breast_cancer.py`` (needs the ``examples`` extra for scikit-learn), or
as a notebook (see the README's "Notebooks" section). The network is ``30 -> 20 -> 7 -> 5 -> 1``:
three ReLU hidden layers and one output logit, trained by mini-batch gradient descent on the binary
cross-entropy of ``sigmoid(logit)``. The notebook derives every step before training.
"""

# %% [markdown]
# # An L-layer binary classifier, step by step
#
# The classic course writes one column per sample: $A^{[0]} = X$ of shape $(n_x, m)$ and, for each
# layer $l$, $Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}$, $A^{[l]} = g(Z^{[l]})$. We store samples as
# rows, as NumPy and PyTorch do, so every activation is the transpose of the course's: with $x$ of
# shape $(m, n_x)$,
#
# $$z^{[l]} = a^{[l-1]} W^{[l]\top} + b^{[l]}, \qquad a^{[l]} = g(z^{[l]}),$$
#
# where $W^{[l]}$ of shape $(n_l, n_{l-1})$ is exactly the course's matrix (and PyTorch's). Each cell
# below takes one step of the derivation, computes it with the library, and checks it against the
# formula in both notations.

# %%
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from _notebook import parse_args
from _plots import line_plot

import functional_dl as fdl
from functional_dl import layers as L

# %% [markdown]
# ## 1. Linear forward
#
# Course: $Z = W A_{\text{prev}} + b$ with $A_{\text{prev}}$ of shape $(n_{l-1}, m)$. Ours:
# $z = a_{\text{prev}} W^\top + b$ with $a_{\text{prev}}$ of shape $(m, n_{l-1})$, so $z = Z^\top$.


# %%
def linear_forward_step(key: fdl.Key) -> tuple[fdl.Array, fdl.Array, fdl.Params]:
    """One dense layer's forward pass, checked in both notations; returns ``(a_prev, z, params)``."""
    k_init, k_x = fdl.random.split(key)
    layer = L.dense(4, dtype=np.float64)
    _, params = layer.init(k_init, (None, 3))
    a_prev = fdl.random.normal(k_x, (5, 3), np.float64)  # m = 5 samples, one per row
    z, _ = layer.forward(params, a_prev)
    w, b = params["w"], params["b"]
    course_z = w @ a_prev.T + b[:, None]  # (n_l, m): one column per sample
    assert np.allclose(z, a_prev @ w.T + b) and np.allclose(z, course_z.T)
    print(
        f"W {w.shape}, a_prev {a_prev.shape} -> z {z.shape}; the course's Z = z.T has shape {course_z.shape}"
    )
    return a_prev, z, params


if __name__ == "__main__":
    a_prev, z, dense_params = linear_forward_step(fdl.random.key(0))

# %% [markdown]
# ## 2. Activation
#
# Hidden layers use $\operatorname{relu}(z) = \max(z, 0)$; the output uses the sigmoid
# $\sigma(z) = 1 / (1 + e^{-z})$, which the loss applies itself (step 4) for numerical stability.
# Activations are elementwise, so the layout does not matter to them.


# %%
def activation_step(z: fdl.Array) -> None:
    """relu and sigmoid as layers, against their formulas."""
    for act, formula in ((L.relu(), np.maximum(z, 0.0)), (L.sigmoid(), 1 / (1 + np.exp(-z)))):
        a, _ = act.forward({}, z)
        assert np.allclose(a, formula)
    print("relu(z):", np.round(L.relu().forward({}, z)[0][0], 3))


if __name__ == "__main__":
    activation_step(z)

# %% [markdown]
# ## 3. The cache
#
# The course's `linear_activation_forward` returns a cache of $(A_{\text{prev}}, W, b, Z)$ for the
# backward pass. Here `forward` returns `(y, cache)`: the cache holds only what `backward` needs that
# it cannot get from `params` (a dense layer keeps its input, an activation its input and output),
# and `serial` keeps one cache per layer.


# %%
def cache_step() -> None:
    """What ``forward`` keeps for ``backward`` in a small network."""
    net = fdl.serial(L.dense(4), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(1), (None, 3))
    _, cache = net.forward(params, np.ones((2, 3), np.float32))
    for i, child in enumerate(cache.caches):
        print(i, type(child).__name__, getattr(child, "_fields", ()))


if __name__ == "__main__":
    cache_step()

# %% [markdown]
# ## 4. The binary cross-entropy
#
# With $s = \sigma(z^{[L]})$, the loss over $m$ samples and its gradient with respect to the logits are
#
# $$J = -\frac{1}{m} \sum_i \big[ y_i \log s_i + (1 - y_i) \log (1 - s_i) \big], \qquad
#   dz^{[L]} = \frac{\partial J}{\partial z^{[L]}} = \frac{s - y}{m}.$$
#
# The course computes $dA^{[L]} = -(y/s - (1-y)/(1-s))$ and multiplies by $\sigma'(Z)$; the product
# simplifies to $s - y$ (we keep the $1/m$ in $dz$, the course puts it into $dW$ and $db$).


# %%
def loss_step(z: fdl.Array) -> fdl.Array:
    """The loss and its gradient against the formulas; returns ``dz``."""
    logits = z[:, :1]
    y = (logits > 0).astype(np.float64)[::-1]  # some right, some wrong
    loss, dz = fdl.losses.sigmoid_binary_cross_entropy(logits, y)
    s, m = 1 / (1 + np.exp(-logits)), len(logits)
    assert np.isclose(loss, -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)))
    assert np.allclose(dz, (s - y) / m)
    print(f"J = {float(loss):.4f}")
    return np.concatenate([dz, np.zeros_like(z[:, 1:])], axis=1)


if __name__ == "__main__":
    dz = loss_step(z)

# %% [markdown]
# ## 5. Backward
#
# For $z = a_{\text{prev}} W^\top + b$, the chain rule gives (ours, then the course's with $dZ = dz^\top$):
#
# | ours | course |
# |---|---|
# | $dW = dz^\top a_{\text{prev}}$ | $dW = \frac{1}{m} dZ\, A_{\text{prev}}^\top$ |
# | $db = \sum_{\text{rows}} dz$ | $db = \frac{1}{m} \sum_{\text{columns}} dZ$ |
# | $da_{\text{prev}} = dz\, W$ | $dA_{\text{prev}} = W^\top dZ$ |
#
# and through a relu, $dz^{[l-1]} = da^{[l-1]} \odot [z^{[l-1]} > 0]$. `net.backward` applies
# these from the last layer down; `grads["0.w"]` is the course's $dW^{[1]}$.


# %%
def backward_step(a_prev: fdl.Array, dz: fdl.Array, params: fdl.Params) -> fdl.Params:
    """A dense layer's backward pass against the formulas in both notations; returns its grads."""
    layer = L.dense(4, dtype=np.float64)
    _, cache = layer.forward(params, a_prev)
    da_prev, grads = layer.backward(params, cache, dz)
    w, m = params["w"], len(dz)
    dz_course, a_prev_course = (dz * m).T, a_prev.T  # the course's (n, m) layout; its dZ has no 1/m
    assert np.allclose(grads["w"], dz.T @ a_prev) and np.allclose(grads["w"], dz_course @ a_prev_course.T / m)
    assert np.allclose(grads["b"], dz.sum(axis=0)) and np.allclose(grads["b"], dz_course.sum(axis=1) / m)
    assert np.allclose(da_prev, dz @ w) and np.allclose(da_prev.T * m, w.T @ dz_course)
    print("dW", grads["w"].shape, "db", grads["b"].shape, "da_prev", da_prev.shape)
    return grads


if __name__ == "__main__":
    dense_grads = backward_step(a_prev, dz, dense_params)

# %% [markdown]
# ## 6. Gradient descent
#
# $W \leftarrow W - \alpha\, dW$ and $b \leftarrow b - \alpha\, db$ for every layer: `fdl.optim.sgd(alpha)`.
# The update returns new params; the old ones are unchanged (they are read-only).


# %%
def descent_step(params: fdl.Params, grads: fdl.Params, learning_rate: float = 0.1) -> None:
    """One SGD update against ``w - lr * dw``."""
    opt = fdl.optim.sgd(learning_rate)
    state, new_params = opt.update(opt.init(params), grads)
    for name in params:
        assert np.allclose(new_params[name], params[name] - learning_rate * grads[name])
    print("updated:", sorted(new_params), "step", state.step)


if __name__ == "__main__":
    descent_step(dense_params, dense_grads)

# %% [markdown]
# ## 7. Prediction
#
# Predict 1 when $\sigma(z) > 0.5$, which is when $z > 0$: no sigmoid is needed to predict, and
# `metrics.accuracy(logits, y)` thresholds logits at 0.
#
# ## The whole model
#
# The data are standardised with the training set's statistics only; the network is built from
# the pieces above and trained by mini-batch gradient descent.


# %%
class Split(NamedTuple):
    """Standardised train and test data (float32) with 0/1 labels of shape ``(m, 1)``."""

    x_train: fdl.Array
    y_train: fdl.Array
    x_test: fdl.Array
    y_test: fdl.Array


def load_data(key: fdl.Key, test_fraction: float = 0.2) -> Split:
    """Load the data set, split it at random from ``key``, and standardise with train statistics only."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.float32).reshape(-1, 1)
    order = fdl.random.permutation(key, len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    scale = np.where(std > 0, std, 1.0)

    def standardise(rows: fdl.IntArray) -> fdl.Array:
        out: fdl.Array = ((x[rows] - mean) / scale).astype(np.float32)
        return out

    return Split(standardise(train), y[train], standardise(test), y[test])


# %%
def build_network(layer_sizes: tuple[int, ...] = (20, 7, 5)) -> fdl.Layer[fdl.combinators.SerialCache]:
    """ReLU hidden layers of the given sizes and one output logit (He initialisation)."""
    hidden = [layer for n in layer_sizes for layer in (L.dense(n), L.relu())]
    return fdl.serial(*hidden, L.dense(1, w_init=fdl.initializers.glorot_uniform()))


def accuracy(
    net: fdl.Layer[fdl.combinators.SerialCache], params: fdl.Params, x: fdl.Array, y: fdl.Array
) -> float:
    """Fraction of samples whose logit has the sign of the label (``sigmoid(z) > 0.5`` iff ``z > 0``)."""
    logits, _ = net.forward(params, x)
    return float(np.mean((logits > 0) == (y > 0.5)))


# %%
def train(
    epochs: int = 60,
    batch_size: int = 32,
    learning_rate: float = 0.05,
    seed: int = 0,
    out: Path | None = None,
) -> float:
    """Train and print one line per epoch; return the final test accuracy.

    With ``out``, also plot the loss and the accuracy curves into that directory.
    """
    data_key, init_key, shuffle_key = fdl.random.split(fdl.random.key(seed), 3)
    data = load_data(data_key)
    net = build_network()
    _, params = net.init(init_key, (None, data.x_train.shape[1]))
    opt = fdl.optim.sgd(learning_rate)
    state = opt.init(params)
    n = len(data.x_train)
    print(f"breast cancer: {n} train / {len(data.x_test)} test samples, network 30-20-7-5-1")
    start = time.perf_counter()
    curves: dict[str, list[float]] = {"loss (train)": [], "accuracy (train)": [], "accuracy (test)": []}
    for epoch in range(1, epochs + 1):
        order = fdl.random.permutation(fdl.random.fold_in(shuffle_key, epoch), n)
        losses = []
        for lo in range(0, n, batch_size):
            rows = order[lo : lo + batch_size]
            logits, cache = net.forward(state.params, data.x_train[rows])
            loss, dlogits = fdl.losses.sigmoid_binary_cross_entropy(logits, data.y_train[rows])
            _, grads = net.backward(state.params, cache, dlogits)
            state, _ = opt.update(state, grads)
            losses.append(float(loss))
        train_acc = accuracy(net, state.params, data.x_train, data.y_train)
        test_acc = accuracy(net, state.params, data.x_test, data.y_test)
        for name, value in zip(curves, (float(np.mean(losses)), train_acc, test_acc), strict=True):
            curves[name].append(value)
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            print(
                f"epoch {epoch:3d}/{epochs}  loss {np.mean(losses):.4f}  "
                f"train acc {train_acc:.3f}  test acc {test_acc:.3f}"
            )
    if out is not None:
        epochs_x = list(range(1, epochs + 1))
        line_plot(out / "breast_cancer_loss.png", {"loss (train)": curves["loss (train)"]}, x=epochs_x,
                  title="Binary cross-entropy", xlabel="epoch", ylabel="loss", log_y=True)  # fmt: skip
        accuracies = {k: v for k, v in curves.items() if k.startswith("accuracy")}
        line_plot(out / "breast_cancer_accuracy.png", accuracies, x=epochs_x,
                  title="Accuracy", xlabel="epoch", ylabel="accuracy")  # fmt: skip
    test_acc = accuracy(net, state.params, data.x_test, data.y_test)
    print(f"final test accuracy: {100 * test_acc:.1f}% ({time.perf_counter() - start:.2f} s of training)")
    return test_acc


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="two epochs, for tests")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parse_args(parser)
    train(2 if args.smoke else args.epochs, args.batch_size, args.lr, args.seed, out=args.out)


# %%
if __name__ == "__main__":
    main()
