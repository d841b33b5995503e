"""An L-layer binary classifier on real data: scikit-learn's breast-cancer set (569 tumours, 30 features).

Run it with ``python examples/breast_cancer.py`` (needs the ``examples`` extra for scikit-learn).

The network is ``30 -> 20 -> 7 -> 5 -> 1``: three ReLU hidden layers and one output logit, trained by
mini-batch gradient descent on the binary cross-entropy of ``sigmoid(logit)``.

The maths, batch-first
----------------------
The classic course writes one column per sample: ``A[0] = X`` of shape ``(n_x, m)`` and, for each
layer ``l``, ``Z[l] = W[l] A[l-1] + b[l]``, ``A[l] = g(Z[l])``. We store samples as rows, as NumPy and
PyTorch do, so every matrix is the transpose of the course's: with ``x`` of shape ``(m, n_x)``,

    z[l] = a[l-1] @ w[l].T + b[l]        w[l]: (n_l, n_{l-1}), exactly the course's W[l]
    a[l] = relu(z[l])                    (sigmoid for the last layer, folded into the loss)

The loss over a batch of ``m`` samples is
``J = -(1/m) sum_i [ y_i log s(z_i) + (1 - y_i) log(1 - s(z_i)) ]``, and its gradient with respect to the
logits is ``dz[L] = (s(z[L]) - y) / m``. Back-propagation then applies, from the last layer down,

    dw[l] = dz[l].T @ a[l-1]     db[l] = sum over rows of dz[l]     da[l-1] = dz[l] @ w[l]
    dz[l-1] = da[l-1] * [z[l-1] > 0]

which is what ``net.backward`` computes layer by layer; ``grads["0.w"]`` is ``dW[1]`` of the course.
Gradient descent is ``w <- w - lr * dw``: ``fdl.optim.sgd(lr)``.
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L


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


def train(epochs: int = 60, batch_size: int = 32, learning_rate: float = 0.05, seed: int = 0) -> float:
    """Train and print one line per epoch; return the final test accuracy."""
    data_key, init_key, shuffle_key = fdl.random.split(fdl.random.key(seed), 3)
    data = load_data(data_key)
    net = build_network()
    _, params = net.init(init_key, (None, data.x_train.shape[1]))
    opt = fdl.optim.sgd(learning_rate)
    state = opt.init(params)
    n = len(data.x_train)
    print(f"breast cancer: {n} train / {len(data.x_test)} test samples, network 30-20-7-5-1")
    start = time.perf_counter()
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
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            train_acc = accuracy(net, state.params, data.x_train, data.y_train)
            test_acc = accuracy(net, state.params, data.x_test, data.y_test)
            print(
                f"epoch {epoch:3d}/{epochs}  loss {np.mean(losses):.4f}  "
                f"train acc {train_acc:.3f}  test acc {test_acc:.3f}"
            )
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
    args = parser.parse_args()
    train(2 if args.smoke else args.epochs, args.batch_size, args.lr, args.seed)


if __name__ == "__main__":
    main()
