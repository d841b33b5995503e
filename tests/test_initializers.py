"""Initializers: fans as PyTorch computes them, moments of the draws, bounds, shapes, dtypes, keys."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import initializers as I

KEY = fdl.random.key(0)
BIG = (300, 400)  # 120,000 draws: the sample variance is within 0.5% (1 sigma) of the truth

# name -> (initializer, variance as a function of (fan_in, fan_out))
SCHEMES: dict[str, tuple[Callable[[], I.Initializer], Callable[[int, int], float]]] = {
    "he_normal": (I.he_normal, lambda i, o: 2 / i),
    "he_uniform": (I.he_uniform, lambda i, o: 2 / i),
    "he_truncated_normal": (I.he_truncated_normal, lambda i, o: 2 / i),
    "glorot_normal": (I.glorot_normal, lambda i, o: 2 / (i + o)),
    "glorot_uniform": (I.glorot_uniform, lambda i, o: 2 / (i + o)),
    "glorot_truncated_normal": (I.glorot_truncated_normal, lambda i, o: 2 / (i + o)),
    "lecun_normal": (I.lecun_normal, lambda i, o: 1 / i),
    "lecun_uniform": (I.lecun_uniform, lambda i, o: 1 / i),
    "lecun_truncated_normal": (I.lecun_truncated_normal, lambda i, o: 1 / i),
}


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(20, 30), (8, 3, 5, 5), (4, 2, 7), (6, 1, 1, 1, 3), (1, 9)])
def test_fans_match_pytorch(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    assert I.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", [BIG, (30, 40, 10, 10)])
@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_variance_mean_and_bounds(name: str, shape: tuple[int, ...]) -> None:
    make, variance = SCHEMES[name]
    fan_in, fan_out = I.fans(shape)
    w = make()(KEY, shape, np.float64)
    target = variance(fan_in, fan_out)
    assert w.shape == shape
    assert abs(w.var() / target - 1) < 0.03
    assert abs(w.mean()) < 4 * math.sqrt(target / w.size)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= math.sqrt(3 * target)
    if name.endswith("truncated_normal"):
        # Truncated at two standard deviations of the underlying normal, then rescaled.
        assert np.abs(w).max() <= 2 * math.sqrt(target) / 0.87962566103423978


@pytest.mark.torch
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("he_normal", lambda t, torch: torch.nn.init.kaiming_normal_(t, nonlinearity="relu")),
        ("he_uniform", lambda t, torch: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu")),
        ("glorot_normal", lambda t, torch: torch.nn.init.xavier_normal_(t)),
        ("glorot_uniform", lambda t, torch: torch.nn.init.xavier_uniform_(t)),
    ],
)
def test_same_distribution_as_pytorch(ours: str, theirs: Callable[..., object]) -> None:
    torch = pytest.importorskip("torch")
    shape = (64, 32, 3, 3)
    w = SCHEMES[ours][0]()(KEY, shape, np.float64)
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=torch.float64)
    theirs(t, torch)
    assert abs(w.std() / float(t.std()) - 1) < 0.03
    if ours.endswith("uniform"):  # the same support: both maxima approach the same bound
        assert abs(np.abs(w).max() / float(t.abs().max()) - 1) < 0.01


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (4, 2, 3, 3)])
def test_orthogonal(shape: tuple[int, ...]) -> None:
    w = I.orthogonal(gain=2.0)(KEY, shape, np.float64)
    assert w.shape == shape
    m = w.reshape(shape[0], -1) / 2.0
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    with pytest.raises(ValueError, match="orthogonal: needs a shape of rank >= 2"):
        I.orthogonal()(KEY, (3,), np.float64)


def test_constants() -> None:
    assert np.array_equal(I.zeros()(KEY, (2, 3), np.float32), np.zeros((2, 3)))
    assert np.array_equal(I.ones()(KEY, (4,), np.float64), np.ones(4))
    c = I.constant(0.25)(KEY, (2, 2), np.float32)
    assert c.dtype == np.float32 and (c == 0.25).all()


ALL = {
    **{k: v[0] for k, v in SCHEMES.items()},
    "orthogonal": I.orthogonal,
    "zeros": I.zeros,
    "ones": I.ones,
    "normal": I.normal,
    "uniform": I.uniform,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ALL))
def test_dtype_shape_and_determinism(name: str, dtype: type) -> None:
    init = ALL[name]()
    a = init(KEY, (6, 4, 3), dtype)
    b = init(KEY, (6, 4, 3), dtype)
    assert a.dtype == dtype and a.shape == (6, 4, 3)
    assert a.tobytes() == b.tobytes()  # same key, same array
    if name not in ("zeros", "ones"):
        assert not np.array_equal(a, init(fdl.random.key(1), (6, 4, 3), dtype))


def test_float32_draws_are_the_float64_draws_rounded() -> None:
    a = I.he_normal()(KEY, (10, 10), np.float32)
    b = I.he_normal()(KEY, (10, 10), np.float64)
    assert np.array_equal(a, b.astype(np.float32))


def test_layers_take_their_initializers_as_arguments() -> None:
    _, p = fdl.layers.dense(3, w_init=I.constant(0.5), b_init=I.ones()).init(KEY, (None, 2))
    assert (p["w"] == 0.5).all() and (p["b"] == 1).all()
    _, p = fdl.layers.batch_norm1d(scale_init=I.constant(2.0), bias_init=I.constant(-1.0)).init(
        KEY, (None, 2)
    )
    assert (p["scale"] == 2).all() and (p["bias"] == -1).all()


def test_bad_scale() -> None:
    with pytest.raises(ValueError, match="scale must be positive"):
        I.variance_scaling(0.0, "fan_in", "normal")
