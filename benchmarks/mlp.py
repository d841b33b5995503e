"""MLP training steps: functional_dl vs PyTorch CPU vs plain NumPy written by hand.

One step is: forward, softmax cross-entropy (mean over the batch), backward, Adam update, all in
float32, on a fixed synthetic batch. Two sizes: the MNIST-1D MLP ``40-100-100-10`` (batch 100,
lr 1e-2 as in the paper; dominated by the fixed cost of each call) and ``784-512-512-10`` (batch
128; dominated by the matrix products). PyTorch's Adam is ``fused=True`` for the larger MLP.

:func:`breakdown` times each part of our MNIST-1D step next to the plain NumPy one
(``python -m benchmarks --breakdown mnist1d_mlp``).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from benchmarks.common import F32, I64, Run, classification_data, fdl_train_step, torch_train_step

MNIST1D_SIZES, MNIST1D_BATCH, MNIST1D_LR = (40, 100, 100, 10), 100, 1e-2
WIDE_SIZES, WIDE_BATCH, WIDE_LR = (784, 512, 512, 10), 128, 1e-3

Arrays = list[F32]


def _data(sizes: Sequence[int], batch: int) -> tuple[F32, I64]:
    return classification_data((batch, sizes[0]), sizes[-1])


def fdl_mlp(quick: bool, *, sizes: Sequence[int], batch: int, lr: float) -> Run:
    import functional_dl as fdl
    from functional_dl import layers as L

    hidden = [part for n in sizes[1:-1] for part in (L.dense(n), L.relu())]
    net = fdl.serial(*hidden, L.dense(sizes[-1]))
    return fdl_train_step(net, *_data(sizes, batch), fdl.optim.adam(lr))


def torch_mlp(quick: bool, *, sizes: Sequence[int], batch: int, lr: float, fused: bool) -> Run:
    import torch

    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    make_opt = partial(torch.optim.Adam, lr=lr, fused=fused or None)
    return torch_train_step(model, *_data(sizes, batch), make_opt)


# ---- plain NumPy, as a competent NumPy user would write it -----------------------------------


def np_init(sizes: Sequence[int]) -> Arrays:
    """He-initialised ``[w1, b1, w2, b2, ...]``, weights ``(n_out, n_in)``."""
    rng = np.random.default_rng(0)
    params: Arrays = []
    for n_in, n_out in itertools.pairwise(sizes):
        params.append((rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32))
        params.append(np.zeros(n_out, np.float32))
    return params


def np_forward(params: Arrays, x: F32) -> tuple[F32, Arrays]:
    """Logits and the activations ``[x, a1, a2, ...]`` that backward needs (ReLU between layers)."""
    acts = [x]
    for i in range(0, len(params) - 2, 2):
        acts.append(np.maximum(acts[-1] @ params[i].T + params[i + 1], 0))
    return acts[-1] @ params[-2].T + params[-1], acts


def np_loss(logits: F32, y: I64) -> tuple[float, F32]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    rows = np.arange(len(y))
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.log(s[:, 0]).mean() - z[rows, y].mean())
    d = e / s
    d[rows, y] -= 1
    d /= len(y)
    return loss, d


def np_backward(params: Arrays, d: F32, acts: Arrays) -> Arrays:
    """Gradients ``[dw1, db1, dw2, db2, ...]``; a ReLU's mask is ``a > 0`` of its output."""
    grads: Arrays = []
    for i in range(len(params) - 2, -1, -2):
        a = acts[i // 2]
        grads[:0] = [d.T @ a, d.sum(0)]
        if i:
            d = (d @ params[i]) * (a > 0)
    return grads


def np_adam(params: Arrays, grads: Arrays, m: Arrays, v: Arrays, *, t: int, lr: float) -> None:
    """Adam step ``t`` (betas 0.9, 0.999, eps 1e-8), in place, as one would write it by hand."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    c1, c2 = 1 - b1**t, 1 - b2**t
    for i, g in enumerate(grads):
        m[i] *= b1
        m[i] += (1 - b1) * g
        v[i] *= b2
        v[i] += (1 - b2) * (g * g)
        params[i] -= (lr / c1) * m[i] / (np.sqrt(v[i] / c2) + eps)


def numpy_mlp(quick: bool, *, sizes: Sequence[int], batch: int, lr: float) -> Run:
    x, y = _data(sizes, batch)
    params = np_init(sizes)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def run() -> object:
        logits, acts = np_forward(params, x)
        loss, dlogits = np_loss(logits, y)
        grads = np_backward(params, dlogits, acts)
        t[0] += 1
        np_adam(params, grads, m, v, t=t[0], lr=lr)
        return loss

    return run


def breakdown(steps: int) -> None:
    """Each part of the MNIST-1D step, ours next to plain NumPy, interleaved (so load hits both alike)."""
    import functional_dl as fdl
    from functional_dl import layers as L

    sizes, lr = MNIST1D_SIZES, MNIST1D_LR
    x, y = _data(sizes, MNIST1D_BATCH)
    loss = fdl.losses.softmax_cross_entropy
    net = fdl.serial(L.dense(100), L.relu(), L.dense(100), L.relu(), L.dense(10))
    _, params = net.init(fdl.random.key(0), (None, sizes[0]))
    opt = fdl.optim.adam(lr)
    state = opt.init(params)
    logits, cache = net.forward(params, x)
    _, dlogits = loss(logits, y)
    grads = net.param_grads(params, cache, dlogits)
    ref = [np.array(p) for p in params.values()]  # the same weights, in the order w1, b1, w2, ...
    ref_logits, acts = np_forward(ref, x)
    _, ref_d = np_loss(ref_logits, y)
    ref_grads = np_backward(ref, ref_d, acts)
    m, v = [np.zeros_like(p) for p in ref], [np.zeros_like(p) for p in ref]
    whole = partial(MNIST1D["functional_dl"], False), partial(MNIST1D["numpy"], False)
    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "forward": (partial(net.forward, params, x), partial(np_forward, ref, x)),
        "loss": (partial(loss, logits, y), partial(np_loss, ref_logits, y)),
        "backward": (
            partial(net.param_grads, params, cache, dlogits),
            partial(np_backward, ref, ref_d, acts),
        ),
        "adam update": (
            partial(opt.update, state, grads),
            partial(np_adam, ref, ref_grads, m, v, t=1, lr=lr),
        ),
        "whole step": (whole[0](), whole[1]()),
    }
    times: dict[str, list[list[float]]] = {k: [[], []] for k in pairs}
    for _ in range(steps):
        for name, fns in pairs.items():
            for side, fn in enumerate(fns):
                start = time.perf_counter()
                fn()
                times[name][side].append(time.perf_counter() - start)
    print(f"{'part':<14}{'functional_dl (us)':>20}{'plain NumPy (us)':>18}{'ratio':>8}")
    for name, (ours, ref_times) in times.items():
        a, b = statistics.median(ours) * 1e6, statistics.median(ref_times) * 1e6
        print(f"{name:<14}{a:>20.1f}{b:>18.1f}{a / b:>8.2f}")


def _builders(sizes: Sequence[int], batch: int, lr: float, fused: bool) -> dict[str, Callable[[bool], Run]]:
    return {
        "functional_dl": partial(fdl_mlp, sizes=sizes, batch=batch, lr=lr),
        "torch": partial(torch_mlp, sizes=sizes, batch=batch, lr=lr, fused=fused),
        "numpy": partial(numpy_mlp, sizes=sizes, batch=batch, lr=lr),
    }


MNIST1D = _builders(MNIST1D_SIZES, MNIST1D_BATCH, MNIST1D_LR, fused=False)
WIDE = _builders(WIDE_SIZES, WIDE_BATCH, WIDE_LR, fused=True)
