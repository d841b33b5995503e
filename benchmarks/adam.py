"""The Adam update alone: 10M float32 parameters in 10 arrays of ``1000 x 1000``, fixed gradients.

functional_dl: ``opt.update(state, grads)`` of ``fdl.optim.adam(1e-3)``; PyTorch:
``torch.optim.Adam(fused=True).step()`` with the gradients already in ``.grad``; plain NumPy: the
in-place update of :func:`benchmarks.mlp.np_adam`. This is bound by memory bandwidth, not by calls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.common import F32, Run
from benchmarks.mlp import np_adam

ARRAYS, SHAPE, LR = 10, (1000, 1000), 1e-3
QUICK_SHAPE = (100, 100)


def _arrays(quick: bool, seed: int) -> list[F32]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(QUICK_SHAPE if quick else SHAPE, dtype=np.float32) for _ in range(ARRAYS)]


def fdl_adam(quick: bool) -> Run:
    import functional_dl as fdl

    params = fdl.params.freeze({f"{i}.w": a for i, a in enumerate(_arrays(quick, 0))})
    grads = {f"{i}.w": a for i, a in enumerate(_arrays(quick, 1))}
    opt = fdl.optim.adam(LR)
    box = [opt.init(params)]

    def run() -> object:
        box[0], _ = opt.update(box[0], grads)
        return box[0]

    return run


def torch_adam(quick: bool) -> Run:
    import torch

    params = [torch.nn.Parameter(torch.from_numpy(a)) for a in _arrays(quick, 0)]
    for p, g in zip(params, _arrays(quick, 1), strict=True):
        p.grad = torch.from_numpy(g)
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    return opt.step


def numpy_adam(quick: bool) -> Run:
    params, grads = _arrays(quick, 0), _arrays(quick, 1)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def run() -> object:
        t[0] += 1
        np_adam(params, grads, m, v, t=t[0], lr=LR)
        return params

    return run


BUILDERS: dict[str, Callable[[bool], Run]] = {
    "functional_dl": fdl_adam,
    "torch": torch_adam,
    "numpy": numpy_adam,
}
