"""Numerically stable array functions shared by the layers and the losses.

These are the plain maths, with no checks and no layer machinery: the activation and softmax
layers lift them into layers, and the losses call them directly. Keeping them here, below both
packages, means no loss imports a layer. Each returns a new array of its input's dtype.

Formulas, with ``m = max_j x_j`` along ``axis`` and ``z = x - m`` (so every ``e^z <= 1``)::

    sigmoid      s(x) = 1 / (1 + e^-x)       = 1 / (1 + e)  if x >= 0,  e / (1 + e)  if x < 0,  e = e^-|x|
    softmax      y = e^z / sum_j e^z_j
    log_softmax  y = z - log sum_j e^z_j

None of them exponentiates a positive number, so all are finite and warning-free at ``+-1e4``;
``log_softmax`` never takes the log of a probability that has underflowed to 0.
"""

from __future__ import annotations

import numpy as np

from functional_dl.types import Array

__all__ = ["log_softmax", "sigmoid", "softmax"]


def sigmoid(x: Array, /) -> Array:
    """The logistic function ``1 / (1 + e^-x)``, computed without overflow for any ``x``.

    Uses ``e = exp(-|x|) <= 1``: ``s(x) = 1/(1+e)`` for ``x >= 0`` and ``e/(1+e)`` for ``x < 0``.

    Example:
        >>> import numpy as np
        >>> sigmoid(np.array([-1e4, 0.0, 1e4])).tolist()
        [0.0, 0.5, 1.0]
    """
    e = np.exp(-np.abs(x))
    inv = 1 / (1 + e)
    out: Array = np.where(x >= 0, inv, e * inv)
    return out


def softmax(x: Array, axis: int = -1) -> Array:
    """``e^x / sum(e^x)`` along ``axis``, max-shifted (see the module docstring)."""
    e: Array = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)  # e is our own fresh array
    return e


def log_softmax(x: Array, axis: int = -1) -> Array:
    """``x - log(sum(e^x))`` along ``axis``, max-shifted (see the module docstring)."""
    z: Array = x - x.max(axis=axis, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))  # z is our own fresh array
    return z
