"""Small synthetic data sets for the teaching examples, drawn from keys (no downloads)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import functional_dl as fdl


def two_moons(
    key: fdl.Key, n: int = 256, noise: float = 0.1, dtype: npt.DTypeLike = np.float64
) -> tuple[fdl.Array, fdl.Array]:
    """Two noisy interleaved half-moons: ``x`` of shape ``(n, 2)`` and 0/1 labels ``y`` of shape ``(n, 1)``.

    Class 0 lies on the upper half circle ``(cos t, sin t)``, class 1 on the lower one shifted to
    ``(1 - cos t, 0.5 - sin t)``, for ``t`` uniform in ``[0, pi]``; Gaussian noise of std ``noise``.
    """
    k_angle, k_label, k_noise = fdl.random.split(key, 3)
    angle = fdl.random.uniform(k_angle, (n,), np.float64, 0.0, np.pi)
    label = fdl.random.bernoulli(k_label, 0.5, (n,))
    x = np.where(
        label[:, None],
        np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1),
        np.stack([np.cos(angle), np.sin(angle)], axis=1),
    )
    x = x + noise * fdl.random.normal(k_noise, (n, 2), np.float64)
    return x.astype(dtype), label.astype(dtype).reshape(n, 1)
