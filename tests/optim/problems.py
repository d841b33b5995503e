"""Test problems for optimizers: a quadratic bowl and the Rosenbrock function, with exact gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from functional_dl.optim import Optimizer
from functional_dl.types import Array, Params

#: Minimiser of :func:`quadratic`.
QUAD_TARGET = {"0.w": np.array([[1.0, -2.0], [0.5, 3.0]]), "0.b": np.array([-1.0, 2.0])}
#: Curvatures of :func:`quadratic` (an ill-conditioned bowl, ratio 10).
QUAD_CURVATURE = {"0.w": np.array([[1.0, 2.0], [5.0, 10.0]]), "0.b": np.array([3.0, 1.0])}


def quadratic_start(dtype: npt.DTypeLike = np.float64) -> dict[str, Array]:
    """The starting point: all zeros."""
    return {k: np.zeros_like(v, dtype=dtype) for k, v in QUAD_TARGET.items()}


def quadratic(params: Params) -> tuple[float, dict[str, Array]]:
    """``f = 0.5 sum_k sum a_k (p_k - c_k)^2`` and its gradient ``a_k (p_k - c_k)`` (dtype kept)."""
    grads = {k: (QUAD_CURVATURE[k] * (p - QUAD_TARGET[k])).astype(p.dtype) for k, p in params.items()}
    value = sum(0.5 * float(np.sum(QUAD_CURVATURE[k] * (p - QUAD_TARGET[k]) ** 2)) for k, p in params.items())
    return value, grads


def rosenbrock_start(dtype: npt.DTypeLike = np.float64) -> dict[str, Array]:
    """The start ``(0, 0)``: in the curved valley's floor region, far from the minimum ``(1, 1)``."""
    return {"xy": np.array([0.0, 0.0], dtype=dtype)}


def rosenbrock(params: Params) -> tuple[float, dict[str, Array]]:
    """``f = (1 - x)^2 + 100 (y - x^2)^2`` (minimum 0 at ``(1, 1)``) and its gradient."""
    xy = params["xy"]
    x, y = xy[0].item(), xy[1].item()
    value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], dtype=xy.dtype)
    return value, {"xy": grad}


def run(
    opt: Optimizer[Any], params: Params, loss: Callable[[Params], tuple[float, dict[str, Array]]], steps: int
) -> tuple[Params, float]:
    """``steps`` updates from ``params``; the final params and loss."""
    state = opt.init(params)
    for _ in range(steps):
        _, grads = loss(state.params)
        state, _ = opt.update(state, grads)
    return state.params, loss(state.params)[0]
