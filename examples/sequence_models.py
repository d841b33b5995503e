"""Sequence models: the GRU's equations, back-propagation through time, and a GRU that remembers.

    python examples/sequence_models.py          # three networks on the memory task (about a minute)
    python examples/sequence_models.py --smoke  # a short run, for tests

The notebook writes the GRU's steps and their backward pass from the equations in NumPy and checks
both against ``L.gru``; then trains a plain tanh RNN, a GRU, and a GRU whose update gate starts
biased towards keeping its state, all of the same size, on a task that needs memory (the label is
the sign of the *first* of ``T = 60`` random numbers, read from the last step's output), and plots
how much gradient reaches each input step at initialisation and the training curves. Plots need
matplotlib. It is also a notebook: see the README's "Notebooks" section.

Measured (seed 0, the defaults): test accuracy 53.9% for the tanh RNN, 52.5% for the GRU as
initialised (chance is 50%) and 99.6% for the GRU with the update-gate bias; 81 s on one thread of a
busy 2-core machine.
"""

# %% [markdown]
# # Sequence models: a GRU step and back-propagation through time
#
# A recurrent layer reads a sequence `x` of shape `(batch, T, features)` one step at a time and
# carries a state $h_t$ of shape `(batch, H)` from each step to the next, with the same weights at
# every step. The plain (Elman) RNN is
#
# $$h_t = \tanh(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}), \qquad h_0 = 0,$$
#
# and the gated recurrent unit (GRU), as PyTorch and `L.gru` compute it, is
#
# $$\begin{aligned}
# r_t &= \sigma(x_t W_{ir}^\top + b_{ir} + h_{t-1} W_{hr}^\top + b_{hr}) && \text{reset gate} \\
# z_t &= \sigma(x_t W_{iz}^\top + b_{iz} + h_{t-1} W_{hz}^\top + b_{hz}) && \text{update gate} \\
# n_t &= \tanh\big(x_t W_{in}^\top + b_{in} + r_t \odot (h_{t-1} W_{hn}^\top + b_{hn})\big)
#   && \text{candidate} \\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}.
# \end{aligned}$$
#
# Rows are samples, as everywhere in this library. The parameters are PyTorch's: `weight_ih_l0`
# stacks $W_{ir}, W_{iz}, W_{in}$ (`3H` rows, gate order `r, z, n`), `weight_hh_l0` stacks
# $W_{hr}, W_{hz}, W_{hn}$, and `bias_ih_l0`, `bias_hh_l0` likewise, so a `torch.nn.GRU`'s
# `state_dict()` loads as it is. The reset gate decides how much of the old state enters the
# candidate (PyTorch's form puts $r_t$ around the whole recurrent term, bias included); the update
# gate mixes candidate and old state. With $z_t$ near 1 the state is copied unchanged, which is how
# a GRU keeps a number for many steps.
#
# The cell below runs these four lines over a sequence in NumPy and compares the result with `L.gru`.

# %%
from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _notebook import parse_args
from _plots import line_plot

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, metrics, optim, testing, train
from functional_dl.errors import ShapeError, describe_shape
from functional_dl.layers._builder import EMPTY_SPECS, ArraySpecs, build
from functional_dl.types import EMPTY

GRU_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


# %%
def _sigmoid(a: fdl.Array) -> fdl.Array:
    out: fdl.Array = 1.0 / (1.0 + np.exp(-a))
    return out


class GruStep(NamedTuple):
    """What one step keeps for the backward pass; every field ``(batch, H)``, ``x`` ``(batch, F)``."""

    x: fdl.Array  # x_t
    h_prev: fdl.Array  # h_{t-1}
    r: fdl.Array
    z: fdl.Array
    n: fdl.Array
    hn: fdl.Array  # h_{t-1} W_hn^T + b_hn, the recurrent term that r multiplies


def gru_by_hand(params: fdl.Params, x: fdl.Array) -> tuple[fdl.Array, list[GruStep]]:
    """The GRU equations, one step at a time: outputs ``(batch, T, H)`` and what each step kept."""
    w_ih, w_hh, b_ih, b_hh = (params[k] for k in GRU_KEYS)
    n_h = w_hh.shape[1]
    h = np.zeros((x.shape[0], n_h), x.dtype)
    steps, outputs = [], []
    for t in range(x.shape[1]):
        gi = x[:, t] @ w_ih.T + b_ih  # (batch, 3H): the input terms of r, z, n
        gh = h @ w_hh.T + b_hh  # (batch, 3H): the recurrent terms
        r = _sigmoid(gi[:, :n_h] + gh[:, :n_h])
        z = _sigmoid(gi[:, n_h : 2 * n_h] + gh[:, n_h : 2 * n_h])
        n = np.tanh(gi[:, 2 * n_h :] + r * gh[:, 2 * n_h :])
        steps.append(GruStep(x[:, t], h, r, z, n, gh[:, 2 * n_h :]))
        h = (1 - z) * n + z * h
        outputs.append(h)
    return np.stack(outputs, axis=1), steps


# %% [markdown]
# ## Back-propagation through time
#
# Unrolled over `T` steps, the layer is a `T`-layer network whose layers share their weights. The
# loss reaches $h_t$ in two ways: through the output at step `t` (the gradient $\bar y_t$ that the
# layers above send back) and through every later state. So the backward pass runs from the last
# step to the first, carrying $\delta_t = \partial L / \partial h_t$:
#
# $$\delta_T = \bar y_T, \qquad
#   \delta_{t-1} = \bar y_{t-1} + \frac{\partial h_t}{\partial h_{t-1}}^{\!\top} \delta_t .$$
#
# For one GRU step, with $\delta = \delta_t$ and $\hat h = h_{t-1} W_{hn}^\top + b_{hn}$, the chain
# rule through the four equations gives (every product elementwise, $\sigma' = \sigma (1 - \sigma)$,
# $\tanh' = 1 - \tanh^2$):
#
# $$\begin{aligned}
# \bar n &= \delta \odot (1 - z), & \bar z &= \delta \odot (h_{t-1} - n), \\
# \bar a_n &= \bar n \odot (1 - n^2), & \bar a_z &= \bar z \odot z (1 - z), \\
# \bar a_r &= \bar a_n \odot \hat h \odot r (1 - r), & &
# \end{aligned}$$
#
# where $a_r, a_z, a_n$ are the arguments of $\sigma, \sigma, \tanh$. The input terms
# $x_t W_{ih}^\top + b_{ih}$ get $[\bar a_r, \bar a_z, \bar a_n]$ and the recurrent terms
# $h_{t-1} W_{hh}^\top + b_{hh}$ get $[\bar a_r, \bar a_z, r \odot \bar a_n]$ (the reset gate
# multiplies the candidate's recurrent term). Then
#
# $$\bar x_t = [\bar a_r, \bar a_z, \bar a_n]\, W_{ih}, \qquad
#   \frac{\partial h_t}{\partial h_{t-1}}^{\!\top} \delta
#   = \delta \odot z + [\bar a_r, \bar a_z, r \odot \bar a_n]\, W_{hh},$$
#
# and each weight's gradient is the sum over the steps of its per-step gradient, for example
# $\bar W_{hh} = \sum_t [\bar a_r, \bar a_z, r \odot \bar a_n]_t^\top h_{t-1}$.
#
# The term $\delta \odot z$ is the GRU's shortcut: where the update gate is near 1, the gradient
# passes back to the previous step almost undamped. A plain RNN has only
# $\partial h_t / \partial h_{t-1} = \operatorname{diag}(1 - h_t^2)\, W_{hh}$, a matrix product at every
# step, so over many steps the gradient shrinks (or grows) geometrically: the vanishing-gradient
# problem of deep networks, here along time. `L.gru` computes exactly these formulas (the loop over
# time is the one Python loop; the input terms of all steps are one matrix product); the next cell
# writes them out and compares.


# %%
def gru_backward_by_hand(
    params: fdl.Params, steps: list[GruStep], dy: fdl.Array
) -> tuple[fdl.Array, dict[str, fdl.Array]]:
    """Back-propagation through time from ``dy`` ``(batch, T, H)``: ``dx`` and the four gradients."""
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    grads = {k: np.zeros_like(params[k]) for k in GRU_KEYS}
    dx = np.zeros((dy.shape[0], len(steps), w_ih.shape[1]), dy.dtype)
    delta = np.zeros_like(dy[:, 0])  # dL/dh_t from the steps after t
    for t in reversed(range(len(steps))):
        s = steps[t]
        delta = delta + dy[:, t]
        da_n = delta * (1 - s.z) * (1 - s.n**2)
        da_z = delta * (s.h_prev - s.n) * s.z * (1 - s.z)
        da_r = da_n * s.hn * s.r * (1 - s.r)
        d_input = np.concatenate([da_r, da_z, da_n], axis=1)  # (batch, 3H)
        d_recurrent = np.concatenate([da_r, da_z, s.r * da_n], axis=1)
        grads["weight_ih_l0"] += d_input.T @ s.x
        grads["bias_ih_l0"] += d_input.sum(axis=0)
        grads["weight_hh_l0"] += d_recurrent.T @ s.h_prev
        grads["bias_hh_l0"] += d_recurrent.sum(axis=0)
        dx[:, t] = d_input @ w_ih
        delta = delta * s.z + d_recurrent @ w_hh
    return dx, grads


def compare_with_the_layer(seed: int = 0) -> float:
    """The largest difference between the hand-written GRU and ``L.gru``, forward and backward (float64)."""
    layer = L.gru(4, dtype=np.float64)
    k_init, k_x, k_dy = fdl.random.split(fdl.random.key(seed), 3)
    _, params = layer.init(k_init, (None, 6, 3))
    x = fdl.random.normal(k_x, (2, 6, 3), np.float64)
    y, cache = layer.forward(params, x)
    dy = fdl.random.normal(k_dy, y.shape, np.float64)
    dx, grads = layer.backward(params, cache, dy)
    y_hand, steps = gru_by_hand(params, x)
    dx_hand, grads_hand = gru_backward_by_hand(params, steps, dy)
    pairs = [(y, y_hand), (dx, dx_hand)] + [(grads[k], grads_hand[k]) for k in GRU_KEYS]
    worst = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    print(f"hand-written GRU vs L.gru, forward, dx and the four gradients: largest difference {worst:.1e}")
    return worst


# %%
def check_tiny_gru(seed: int = 0) -> float:
    """Finite differences against ``L.gru``'s backward in float64; returns the worst error ratio."""
    layer = L.gru(3, dtype=np.float64)
    init_key, x_key = fdl.random.split(fdl.random.key(seed))
    _, params = layer.init(init_key, (None, 4, 2))
    x = fdl.random.normal(x_key, (2, 4, 2), np.float64)
    report = testing.check_gradients(layer, params, x)
    print(report.describe())
    return report.error


# %% [markdown]
# ## A task that needs memory
#
# Each sample is a sequence of `T` standard normal numbers and its label is whether the **first**
# is positive. The network reads the whole sequence and decides from the output of the **last**
# step alone, so it must carry one bit across `T - 1` steps of distracting input. (Reading the
# outputs of every step, as `flatten` would, lets the dense layer look at step 0 directly, and the
# task needs no memory at all.) Taking the last step is a layer of our own, written as every layer
# of the library is: a cache, a forward, a backward (`dx` is zero at every step but the last) and
# the builder.


# %%
class LastStepCache(NamedTuple):
    """What backward needs from forward."""

    shape: tuple[int, ...]  # the input's, (batch, T, H)


def _last_step_shapes(in_shape: fdl.Shape, /) -> tuple[fdl.Shape, ArraySpecs]:
    if len(in_shape) != 3:
        raise ShapeError(
            "last_step", f"expected an input shape (batch, T, H), got {describe_shape(in_shape)}"
        )
    return (in_shape[0], in_shape[2]), EMPTY_SPECS


def _last_step_forward(
    params: fdl.Params, x: fdl.Array, ctx: fdl.Context = fdl.EVAL, /
) -> tuple[fdl.Array, LastStepCache]:
    if x.ndim != 3 or x.shape[1] == 0:
        raise ShapeError(
            "last_step", f"expected input of shape (batch, T >= 1, H), got {describe_shape(x.shape)}"
        )
    return x[:, -1].copy(), LastStepCache(x.shape)


def _last_step_backward(
    params: fdl.Params, cache: LastStepCache, dy: fdl.Array, /
) -> tuple[fdl.Array, fdl.Params]:
    dx = np.zeros(cache.shape, dy.dtype)
    dx[:, -1] = dy
    return dx, EMPTY


def last_step() -> fdl.Layer[LastStepCache]:
    """``(batch, T, H) -> (batch, H)``: the sequence's last step."""
    return build("last_step", _last_step_shapes, _last_step_forward, _last_step_backward)


# %% [markdown]
# ## Three networks, one lesson about the update gate
#
# The shortcut $\delta \odot z$ only helps where $z$ is near 1. PyTorch's initialisation (and
# ours) draws every weight and bias from $U(-1/\sqrt H, 1/\sqrt H)$, so at the start $z \approx 0.5$
# and the gradient still halves at every step: after 30 steps about $10^{-9}$ of it is left, and a
# network that cannot see the signal cannot learn to keep it. Adding 2 to the update gate's bias
# (`bias_hh_l0[H:2H]`) starts it at $z \approx \sigma(2) = 0.88$, copying the state by default; it is
# the GRU's form of the LSTM's forget-gate bias of 1 (Jozefowicz et al., 2015). We train three
# networks of the same width with the same Adam steps on the same batches: a plain tanh RNN, a
# GRU as initialised, and the GRU with the bias. Before training we measure how much gradient of the
# loss reaches each input step, $\lVert \partial L / \partial x_t \rVert$ over the test batch (the
# signal back-propagation through time delivers), and after training how well each remembers.


# %%
class Variant(NamedTuple):
    """A recurrent layer and the bias added to its update gate at initialisation."""

    layer: Callable[[int], fdl.Layer[Any]]  # hidden_size -> layer
    update_gate_bias: float = 0.0  # added to bias_hh_l0[H:2H] (GRU only)


#: The networks compared, by name.
VARIANTS: dict[str, Variant] = {
    "tanh RNN": Variant(partial(L.rnn, nonlinearity="tanh")),
    "GRU": Variant(L.gru),
    "GRU, update gate bias +2": Variant(L.gru, 2.0),
}


def build_network(variant: Variant, hidden: int) -> fdl.Layer[Any]:
    """The recurrent layer over the sequence, its last step's output, one logit."""
    return fdl.serial(variant.layer(hidden), last_step(), L.dense(1))


def with_update_gate_bias(params: fdl.Params, bias: float, hidden: int) -> fdl.Params:
    """``params`` with ``bias`` added to the GRU's update-gate bias, ``0.bias_hh_l0[H:2H]``."""
    if not bias:
        return params
    b = params["0.bias_hh_l0"].copy()
    b[hidden : 2 * hidden] += bias
    return fdl.params.freeze({**params, "0.bias_hh_l0": b})


def make_data(key: fdl.Key, n: int, steps: int) -> tuple[fdl.Array, fdl.Array]:
    """Sequences ``(n, steps, 1)`` of standard normals; labels ``(n, 1)``: ``x[:, 0, 0] > 0``."""
    x = fdl.random.normal(key, (n, steps, 1))
    return x, (x[:, 0, :] > 0).astype(np.float32)


class Result(NamedTuple):
    """One network's gradients at initialisation, training curve and accuracies."""

    initial_input_grads: tuple[float, ...]  # ||dL/dx_t|| on the test set at initialisation, t = 0 .. T-1
    losses: tuple[float, ...]  # training loss per epoch
    test_accuracy: float


def input_gradient_norms(
    net: fdl.Layer[Any], params: fdl.Params, x: fdl.Array, y: fdl.Array
) -> tuple[float, ...]:
    """``||dL/dx_t||`` over the batch for each step ``t``: how much each input step moves the loss."""
    logits, cache = net.forward(params, x)
    _, dlogits = losses.sigmoid_binary_cross_entropy(logits, y)
    dx, _ = net.backward(params, cache, dlogits)
    return tuple(float(v) for v in np.linalg.norm(dx[:, :, 0], axis=0))


def run(
    variant: Variant, *, n: int = 2048, steps: int = 60, hidden: int = 16, epochs: int = 20, seed: int = 0
) -> Result:
    """Train ``variant`` on the first-element task; held-out accuracy on 512 fresh sequences."""
    data_key, test_key, init_key, fit_key = fdl.random.split(fdl.random.key(seed), 4)
    x, y = make_data(data_key, n, steps)
    x_test, y_test = make_data(test_key, 512, steps)
    net = build_network(variant, hidden)
    _, params = net.init(init_key, (None, steps, 1))
    params = with_update_gate_bias(params, variant.update_gate_bias, hidden)
    initial = input_gradient_norms(net, params, x_test, y_test)
    opt = optim.adam(1e-2)
    loss = losses.sigmoid_binary_cross_entropy
    state = train.init_train_state(opt, params)
    result = train.fit(
        net, loss, opt, state, (x, y), key=fit_key, epochs=epochs, batch_size=64, progress="none"
    )
    logits, _ = net.forward(result.train_state.params, x_test)
    return Result(initial, result.history["loss"], metrics.accuracy(logits, y_test))


# %%
def report(results: dict[str, Result], out: Path) -> None:
    """Print the accuracies and save (and, in a notebook, show) the two plots."""
    for name, res in results.items():
        grads = res.initial_input_grads
        print(
            f"{name:>24}: at initialisation ||dL/dx_0|| / ||dL/dx_T-1|| = {grads[0] / grads[-1]:.1e}; "
            f"loss {res.losses[0]:.3f} -> {res.losses[-1]:.3f}, test accuracy {100 * res.test_accuracy:.1f}%"
        )
    steps = len(next(iter(results.values())).initial_input_grads)
    for saved in (
        line_plot(
            out / "sequence_models_input_gradients.png",
            {name: res.initial_input_grads for name, res in results.items()},
            title=f"At initialisation: gradient reaching each of the {steps} input steps",
            xlabel="input step t (the label is decided by step 0)",
            ylabel="||dL/dx_t||",
            log_y=True,
        ),
        line_plot(
            out / "sequence_models_loss.png",
            {name: res.losses for name, res in results.items()},
            title="Remembering the first of the inputs: training loss",
            xlabel="epoch",
            ylabel="binary cross-entropy",
            x=range(1, len(next(iter(results.values())).losses) + 1),
        ),
    ):
        if saved is not None:
            print(f"saved {saved}")


# %%
def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60, help="sequence length T")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a short run, for tests")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parse_args(parser)
    compare_with_the_layer()
    check_tiny_gru()
    n, steps, epochs = (256, 8, 2) if args.smoke else (2048, args.steps, args.epochs)
    results = {name: run(v, n=n, steps=steps, epochs=epochs, seed=args.seed) for name, v in VARIANTS.items()}
    report(results, args.out)


# %%
if __name__ == "__main__":
    main()

# %% [markdown]
# ## What the run shows
#
# With `T = 60`, width 16, 2048 training sequences, 20 epochs of Adam (lr 0.01, batch 64) and seed 0,
# as measured: at initialisation the gradient reaching step 0 is $10^{-15}$ of the one reaching the
# last step in the tanh RNN, $2 \cdot 10^{-11}$ in the GRU and $10^{-3}$ in the GRU with the bias.
# Only the last learns the task (test accuracy 99.6%, the loss falling from 0.69 to 0.004 after a
# few epochs of searching); the other two stay at chance (54% and 53%), their loss at $\ln 2$. The
# architecture makes remembering possible; the initialisation decides whether gradient descent
# finds it.
