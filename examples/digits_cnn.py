"""A small CNN with batch norm and dropout on scikit-learn's digits (8x8 images), >= 98% test accuracy.

    python examples/digits_cnn.py           # 30 epochs, prints accuracy per epoch, ~1 minute
    python examples/digits_cnn.py --smoke   # 2 epochs on a subset: checks that everything runs

It is also a notebook: see the README's "Notebooks" section.
"""

# %% [markdown]
# # A small CNN with batch norm and dropout on scikit-learn's digits (8x8 images), >= 98% test accuracy
#
# The data: 1797 grey-scale 8x8 digits with values 0..16, scaled to [0, 1] and shaped `(n, 1, 8, 8)`.
# The split is fixed: a permutation drawn from `random.key(0)` puts 360 images (20%) in the test
# set and the other 1437 in the training set.
#
# The network (`(n, 1, 8, 8) -> 10` logits):
#
# ```
# conv 3x3 32 - batch norm - relu - conv 3x3 32 - batch norm - relu - max pool 2    -> (32, 4, 4)
# conv 3x3 64 - batch norm - relu - max pool 2                                       -> (64, 2, 2)
# flatten - dropout 0.3 - dense 10
# ```
#
# Convolutions have no bias (batch norm's own bias makes it redundant). Training is an explicit loop:
# Adam (lr 3e-3), batch 32, mini-batches reshuffled each epoch from `random.fold_in(key, epoch)`;
# each step runs the forward pass in training mode with its own key (dropout masks) and the batch
# norm buffers, carries the new running statistics forward, and updates the params. Evaluation uses
# the running statistics and no dropout.

# %%
from __future__ import annotations

import argparse
import time
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from _notebook import parse_args

import functional_dl as fdl
from functional_dl import layers as L

TEST_SIZE = 360


# %%
class Digits(NamedTuple):
    """Images ``(n, 1, 8, 8)`` in [0, 1] (float32) and labels ``(n,)``, split into train and test."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]


# %%
def load_digits() -> Digits:
    """The fixed split: test = the first 360 indices of the permutation from ``random.key(0)``."""
    from sklearn.datasets import load_digits as sklearn_digits

    raw = sklearn_digits()
    x = (np.asarray(raw.data, dtype=np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = np.asarray(raw.target, dtype=np.int64)
    order = fdl.random.permutation(fdl.random.key(0), len(x))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return Digits(x[train], y[train], x[test], y[test])


# %%
def _conv_bn_relu(channels: int) -> tuple[fdl.Layer[Any], ...]:
    return (L.conv2d(channels, 3, padding=1, use_bias=False), L.batch_norm2d(), L.relu())


# %%
def build_network(widths: tuple[int, int, int] = (32, 32, 64)) -> fdl.Layer[fdl.combinators.SerialCache]:
    """The CNN described in the module docstring (``widths`` are the three convolutions' channels)."""
    return fdl.serial(
        *_conv_bn_relu(widths[0]),
        *_conv_bn_relu(widths[1]),
        L.max_pool2d(2),
        *_conv_bn_relu(widths[2]),
        L.max_pool2d(2),
        L.flatten(),
        L.dropout(0.3),
        L.dense(10),
    )


# %%
def accuracy(
    net: fdl.Layer[fdl.combinators.SerialCache],
    params: fdl.Params,
    buffers: fdl.Buffers,
    x: fdl.Array,
    y: npt.NDArray[np.int64],
) -> float:
    """Test accuracy (fraction) in evaluation mode: running statistics, no dropout."""
    logits, _ = net.forward(params, x, fdl.Context(train=False, buffers=buffers))
    return float(np.mean(np.argmax(logits, axis=1) == y))


# %%
def train(
    epochs: int = 30, batch_size: int = 32, lr: float = 3e-3, subset: int | None = None, verbose: bool = True
) -> float:
    """Train from ``random.key(1)`` and return the final test accuracy (a fraction)."""
    data = load_digits()
    x, y = (data.x, data.y) if subset is None else (data.x[:subset], data.y[:subset])
    net = build_network()
    init_key, data_key, dropout_key = fdl.random.split(fdl.random.key(1), 3)
    _, params, buffers = net.init_with_buffers(init_key, (None, 1, 8, 8))
    opt = fdl.optim.adam(lr)
    opt_state = opt.init(params)
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        batches = fdl.train.minibatches(fdl.random.fold_in(data_key, epoch), (x, y), batch_size)
        for xb, yb in batches:
            ctx = fdl.Context(train=True, key=fdl.random.fold_in(dropout_key, step), buffers=buffers)
            logits, cache = net.forward(opt_state.params, xb, ctx)
            _, dlogits = fdl.losses.softmax_cross_entropy(logits, yb)
            _, grads = net.backward(opt_state.params, cache, dlogits)
            opt_state, _ = opt.update(opt_state, grads)
            buffers = net.buffers_of(cache)
            step += 1
        if verbose:
            acc = accuracy(net, opt_state.params, buffers, data.x_test, data.y_test)
            elapsed = time.perf_counter() - start
            print(f"epoch {epoch + 1:3d}/{epochs}  test accuracy {100 * acc:.2f}%  ({elapsed:.1f} s)")
    final = accuracy(net, opt_state.params, buffers, data.x_test, data.y_test)
    if verbose:
        print(f"final test accuracy {100 * final:.2f}% on the fixed {TEST_SIZE}-image test split")
    return final


# %%
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="2 epochs on 256 training images")
    args = parse_args(parser)
    if args.smoke:
        train(epochs=2, subset=256)
    else:
        train(epochs=args.epochs)


# %%
if __name__ == "__main__":
    main()
