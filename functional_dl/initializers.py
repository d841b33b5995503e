"""Weight initializers: pure functions ``(key, shape, dtype) -> Array``.

Fans follow PyTorch's convention for both dense and convolution weights: a weight of shape
``(out, in, *kernel)`` has ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``; a
1-D shape (a bias) has ``fan_in = fan_out = shape[0]``.

Variance scaling draws with variance ``scale / fan`` where ``fan`` is ``fan_in``, ``fan_out`` or
their mean; the named schemes are:

==================  ======  ==========  =================
name                scale   mode        distribution
==================  ======  ==========  =================
``he_normal``       2       fan_in      normal
``he_uniform``      2       fan_in      uniform
``glorot_normal``   1       fan_avg     normal
``glorot_uniform``  1       fan_avg     uniform
``lecun_normal``    1       fan_in      normal
``lecun_uniform``   1       fan_in      uniform
==================  ======  ==========  =================

A uniform on ``[-a, a]`` has variance ``a^2 / 3``, so ``a = sqrt(3 * scale / fan)``. The
``*_truncated_normal`` variants draw a normal truncated at two standard deviations and rescale it
by ``1 / 0.87962566`` (the standard deviation of that truncated normal) so the variance is exact.

Every initializer refuses what is not a :class:`~functional_dl.types.Key` (an int seed, ``None``)
with a :class:`~functional_dl.errors.KeyTypeError`, the constant ones too.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from functional_dl import random
from functional_dl.errors import DomainError, ShapeError
from functional_dl.types import Array, Key

__all__ = [
    "Initializer",
    "constant",
    "fans",
    "glorot_normal",
    "glorot_truncated_normal",
    "glorot_uniform",
    "he_normal",
    "he_truncated_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_truncated_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "variance_scaling",
    "zeros",
]

Mode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["normal", "uniform", "truncated_normal"]

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


class Initializer(Protocol):
    """``(key, shape, dtype) -> Array``: a new array of ``shape`` and ``dtype``."""

    def __call__(self, key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /) -> Array: ...


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape, as PyTorch computes them.

    Example:
        >>> fans((20, 30))          # dense (out, in)
        (30, 20)
        >>> fans((8, 3, 5, 5))      # conv2d (out, in, kh, kw)
        (75, 200)
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _variance_scaling(
    key: Key,
    shape: tuple[int, ...],
    dtype: npt.DTypeLike,
    /,
    *,
    scale: float,
    mode: Mode,
    distribution: Distribution,
) -> Array:
    fan_in, fan_out = fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(fan, 1)
    if distribution == "normal":
        out = random.normal(key, shape, np.float64) * math.sqrt(variance)
    elif distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        out = random.uniform(key, shape, np.float64, -limit, limit)
    else:
        out = random.truncated_normal(key, shape, np.float64) * (math.sqrt(variance) / _TRUNCATED_STD)
    result: Array = out.astype(dtype)
    return result


def variance_scaling(scale: float, mode: Mode, distribution: Distribution) -> Initializer:
    """An initializer drawing with variance ``scale / fan`` (see the module docstring).

    Raises:
        DomainError: when ``scale`` is not a positive finite real number.
    """
    number = isinstance(scale, int | float | np.integer | np.floating) and not isinstance(scale, bool)
    if not (number and 0 < scale < math.inf):
        raise DomainError("variance_scaling", f"scale must be positive and finite, got {scale!r}")
    return partial(_variance_scaling, scale=scale, mode=mode, distribution=distribution)


def he_normal() -> Initializer:
    """Kaiming He normal: ``N(0, 2 / fan_in)``, for ReLU networks."""
    return variance_scaling(2.0, "fan_in", "normal")


def he_uniform() -> Initializer:
    """Kaiming He uniform: ``U(-a, a)`` with ``a = sqrt(6 / fan_in)``."""
    return variance_scaling(2.0, "fan_in", "uniform")


def he_truncated_normal() -> Initializer:
    """He scaling with a normal truncated at two standard deviations."""
    return variance_scaling(2.0, "fan_in", "truncated_normal")


def glorot_normal() -> Initializer:
    """Xavier Glorot normal: ``N(0, 2 / (fan_in + fan_out))``."""
    return variance_scaling(1.0, "fan_avg", "normal")


def glorot_uniform() -> Initializer:
    """Xavier Glorot uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    return variance_scaling(1.0, "fan_avg", "uniform")


def glorot_truncated_normal() -> Initializer:
    """Glorot scaling with a normal truncated at two standard deviations."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal")


def lecun_normal() -> Initializer:
    """LeCun normal: ``N(0, 1 / fan_in)``, for SELU networks."""
    return variance_scaling(1.0, "fan_in", "normal")


def lecun_uniform() -> Initializer:
    """LeCun uniform: ``U(-a, a)`` with ``a = sqrt(3 / fan_in)``."""
    return variance_scaling(1.0, "fan_in", "uniform")


def lecun_truncated_normal() -> Initializer:
    """LeCun scaling with a normal truncated at two standard deviations."""
    return variance_scaling(1.0, "fan_in", "truncated_normal")


def _constant(key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /, *, value: float) -> Array:
    random.check_key(key)  # unused, but an int seed is refused here as by every initializer that draws
    out: Array = np.full(shape, value, dtype=dtype)
    return out


def constant(value: float) -> Initializer:
    """Every entry equal to ``value``; the key is checked (as every initializer checks it) but not used."""
    return partial(_constant, value=value)


def zeros() -> Initializer:
    """All zeros (the usual bias initializer)."""
    return constant(0.0)


def ones() -> Initializer:
    """All ones (the usual normalisation scale initializer)."""
    return constant(1.0)


def _normal(key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /, *, std: float) -> Array:
    out: Array = (random.normal(key, shape, np.float64) * std).astype(dtype)
    return out


def normal(std: float = 0.01) -> Initializer:
    """``N(0, std^2)`` independent of the fans."""
    return partial(_normal, std=std)


def _uniform(key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /, *, limit: float) -> Array:
    out: Array = random.uniform(key, shape, np.float64, -limit, limit).astype(dtype)
    return out


def uniform(limit: float = 0.05) -> Initializer:
    """``U(-limit, limit)`` independent of the fans."""
    return partial(_uniform, limit=limit)


def _orthogonal(key: Key, shape: tuple[int, ...], dtype: npt.DTypeLike, /, *, gain: float) -> Array:
    if len(shape) < 2:
        raise ShapeError("orthogonal", f"needs a shape of rank >= 2, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    a = random.normal(key, (max(rows, cols), min(rows, cols)), np.float64)
    q, r = np.linalg.qr(a)
    # Fix the signs so the distribution is uniform (Haar) over orthogonal matrices.
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    out: Array = (gain * q).reshape(shape).astype(dtype)
    return out


def orthogonal(gain: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix times ``gain``; higher ranks are flattened to ``(out, -1)``."""
    return partial(_orthogonal, gain=gain)
