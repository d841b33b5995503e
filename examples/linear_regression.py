"""Linear regression by gradient descent, checked against the closed-form least-squares solution.

Run it with ``python examples/linear_regression.py`` (needs only NumPy), or as a notebook (see the
README's "Notebooks" section).
"""

# %% [markdown]
# # Linear regression by gradient descent
#
# A single dense layer $\hat y = x w^\top + b$ is fitted to noisy data from a known line by
# full-batch gradient descent on the mean squared error
#
# $$J = \frac{1}{m} \sum_{i=1}^{m} (\hat y_i - y_i)^2 .$$
#
# Its gradients, which `net.backward` computes, are
#
# $$\frac{\partial J}{\partial w} = \frac{2}{m} (\hat y - y)^\top x, \qquad
#   \frac{\partial J}{\partial b} = \frac{2}{m} \sum_i (\hat y_i - y_i).$$
#
# The same problem has a closed form: append a column of ones to $x$ and solve the least-squares
# problem $\min_\theta \lVert [x, 1]\, \theta - y \rVert$ (`numpy.linalg.lstsq`); gradient descent must
# converge to it.

# %%
from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np
from _notebook import parse_args

import functional_dl as fdl
from functional_dl import layers as L


class Fit(NamedTuple):
    """Learned and closed-form coefficients, and the largest difference between them."""

    weights: fdl.Array  # (n_features,)
    bias: float
    exact_weights: fdl.Array  # (n_features,)
    exact_bias: float
    max_difference: float


# %% [markdown]
# The data: $m$ points $x$ with $n$ features and $y = x\,w_{\text{true}} + 0.5 + \text{noise}$.


# %%
def make_data(key: fdl.Key, m: int = 200, n_features: int = 3) -> tuple[fdl.Array, fdl.Array, fdl.Array]:
    """``x`` of shape ``(m, n)``, ``y = x @ true_w + 0.5 + noise`` of shape ``(m, 1)``, and ``true_w``."""
    kx, kw, kn = fdl.random.split(key, 3)
    x = fdl.random.normal(kx, (m, n_features), np.float64)
    true_w = fdl.random.normal(kw, (n_features,), np.float64)
    y = (x @ true_w + 0.5 + 0.1 * fdl.random.normal(kn, (m,), np.float64)).reshape(m, 1)
    return x, y, true_w


# %% [markdown]
# The closed form, and gradient descent with the library's pieces: `forward`, the loss with its
# gradient, `backward`, and one optimizer update per step.


# %%
def closed_form(x: fdl.Array, y: fdl.Array) -> tuple[fdl.Array, float]:
    """Least-squares weights and bias via ``numpy.linalg.lstsq`` on ``[x, 1]``."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.linalg.lstsq(design, y[:, 0], rcond=None)[0]
    return theta[:-1], float(theta[-1])


def fit(steps: int = 500, learning_rate: float = 0.1, seed: int = 0, verbose: bool = True) -> Fit:
    """Fit by full-batch gradient descent and compare with the closed form."""
    data_key, init_key = fdl.random.split(fdl.random.key(seed))
    x, y, _ = make_data(data_key)
    net = L.dense(1, dtype=np.float64)
    _, params = net.init(init_key, (None, x.shape[1]))
    opt = fdl.optim.sgd(learning_rate)
    state = opt.init(params)
    for step in range(steps):
        y_hat, cache = net.forward(state.params, x)
        loss, dy = fdl.losses.mean_squared_error(y_hat, y)
        _, grads = net.backward(state.params, cache, dy)
        state, _ = opt.update(state, grads)
        if verbose and (step % 100 == 0 or step == steps - 1):
            print(f"step {step:4d}  mse {float(loss):.6f}")
    w, b = state.params["w"][0], float(state.params["b"][0])
    exact_w, exact_b = closed_form(x, y)
    diff = max(float(np.max(np.abs(w - exact_w))), abs(b - exact_b))
    if verbose:
        print(f"gradient descent: w = {np.round(w, 5)}, b = {b:.5f}")
        print(f"closed form:      w = {np.round(exact_w, 5)}, b = {exact_b:.5f}")
        print(f"largest difference: {diff:.2e}")
    return Fit(w, b, exact_w, exact_b, diff)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Linear regression by gradient descent vs closed form.")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--smoke", action="store_true", help="a short run, for tests")
    args = parse_args(parser)
    fit(50 if args.smoke else args.steps, args.lr)


# %%
if __name__ == "__main__":
    main()
