"""Pooling layers: finite differences, the tie rule, errors. ``test_pool_torch.py`` compares with PyTorch."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import ShapeError
from functional_dl.layers._windows import Pads
from functional_dl.testing import check_gradients, check_purity


class PoolConfig(NamedTuple):
    """One pooling layer and the input shape to run it on."""

    kind: str  # "max" or "avg"
    nd: int
    shape: tuple[int, ...]  # (N, C, *S)
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads
    count_include_pad: bool

    def layer(self) -> fdl.Layer[Any]:
        if self.kind == "max":
            make_max = L.max_pool1d if self.nd == 1 else L.max_pool2d
            return make_max(self.kernel, self.stride, self.pads)
        make_avg = L.avg_pool1d if self.nd == 1 else L.avg_pool2d
        return make_avg(self.kernel, self.stride, self.pads, self.count_include_pad)


@st.composite
def pool_configs(draw: st.DrawFn, kind: str | None = None) -> PoolConfig:
    """Small poolings: overlapping and gapped windows (stride < or > kernel), asymmetric padding."""
    nd = draw(st.sampled_from([1, 2]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pads = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in kernel)
    spatial = tuple(
        draw(st.integers(max(1, k - lo - hi), k + 4)) for k, (lo, hi) in zip(kernel, pads, strict=True)
    )
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial)
    return PoolConfig(
        kind or draw(st.sampled_from(["max", "avg"])), nd, shape, kernel, stride, pads, draw(st.booleans())
    )


def distinct_values(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Entries that differ pairwise by at least 0.01, so max pooling is differentiable with margin."""
    n = int(np.prod(shape))
    perm = fdl.random.permutation(fdl.random.key(seed), n)
    return ((perm - n / 2) * 0.01).reshape(shape).astype(np.float64)


@given(cfg=pool_configs(), seed=st.integers(0, 2**16))
def test_pool_finite_differences(cfg: PoolConfig, seed: int) -> None:
    report = check_gradients(cfg.layer(), {}, distinct_values(cfg.shape, seed))
    assert report.checked == int(np.prod(cfg.shape))


@given(cfg=pool_configs(), seed=st.integers(0, 2**16))
def test_pool_shapes_dtype_purity(cfg: PoolConfig, seed: int) -> None:
    layer = cfg.layer()
    out_shape, params = layer.init(fdl.random.key(0), (None, *cfg.shape[1:]))
    x = distinct_values(cfg.shape, seed).astype(np.float32)
    y, cache = layer.forward(params, x)
    assert y.shape == (cfg.shape[0], *out_shape[1:])
    dx, _ = layer.backward(params, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert dx.shape == x.shape
    check_purity(layer, params, x)


def test_max_pool_ties_go_to_first_maximum_in_row_major_order() -> None:
    x = np.array([[[[0.0, 2.0, 2.0], [2.0, 1.0, 2.0], [2.0, 2.0, 2.0]]]])
    layer = L.max_pool2d(2, stride=1)
    y, cache = layer.forward({}, x)
    dx, _ = layer.backward({}, cache, np.ones_like(y))
    assert y.ravel().tolist() == [2.0, 2.0, 2.0, 2.0]
    # Windows start at (0,0), (0,1), (1,0), (1,1); the first 2 in each is at (0,1), (0,1), (1,0), (1,2).
    assert dx[0, 0].tolist() == [[0.0, 2.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_max_pool_never_selects_padding() -> None:
    x = -np.ones((1, 1, 2, 2))
    y, _ = L.max_pool2d(2, stride=1, padding=1).forward({}, x)
    assert np.all(y == -1.0)


def test_avg_pool_count_include_pad() -> None:
    x = np.ones((1, 1, 3))
    y_inc, _ = L.avg_pool1d(3, stride=1, padding=1).forward({}, x)
    y_exc, _ = L.avg_pool1d(3, stride=1, padding=1, count_include_pad=False).forward({}, x)
    np.testing.assert_allclose(y_inc.ravel(), [2 / 3, 1.0, 2 / 3])
    np.testing.assert_allclose(y_exc.ravel(), [1.0, 1.0, 1.0])


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    out=st.tuples(st.integers(1, 7), st.integers(1, 7) | st.none()),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool_finite_differences(
    shape: tuple[int, int, int, int], out: tuple[int, int | None], seed: int
) -> None:
    layer = L.adaptive_avg_pool2d(out)
    out_shape, _ = layer.init(fdl.random.key(0), (None, *shape[1:]))
    x = fdl.random.normal(fdl.random.key(seed), shape, np.float64)
    y, _ = layer.forward({}, x)
    assert y.shape == (shape[0], *out_shape[1:])
    check_gradients(layer, {}, x)


@given(shape=st.lists(st.integers(1, 4), min_size=3, max_size=4).map(tuple), seed=st.integers(0, 2**16))
def test_global_avg_pool(shape: tuple[int, ...], seed: int) -> None:
    x = fdl.random.normal(fdl.random.key(seed), shape, np.float64)
    y, _ = L.global_avg_pool().forward({}, x)
    np.testing.assert_allclose(y, x.reshape(*shape[:2], -1).mean(axis=2), rtol=1e-13)
    check_gradients(L.global_avg_pool(), {}, x)


def test_adaptive_avg_pool_float32() -> None:
    y, cache = L.adaptive_avg_pool2d(2).forward({}, np.ones((1, 2, 5, 3), np.float32))
    dx, _ = L.adaptive_avg_pool2d(2).backward({}, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, 1.0)


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (
            L.max_pool2d(2),
            np.ones((2, 3, 4)),
            r"max_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(2, 3, 4\)",
        ),
        (
            L.avg_pool1d(5),
            np.ones((1, 1, 3)),
            r"avg_pool1d: kernel of extent \(5,\) is larger than the padded input",
        ),
        (L.adaptive_avg_pool2d(2), np.ones((1, 3, 4)), r"adaptive_avg_pool2d: expected a 4-D input"),
        (L.global_avg_pool(), np.ones((3, 4)), r"global_avg_pool: expected an input \(N, C, \*spatial\)"),
    ],
)
def test_pool_shape_errors(layer: fdl.Layer[Any], x: np.ndarray, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        layer.forward({}, x)


def test_pool_rejects_integer_input_and_bad_padding() -> None:
    with pytest.raises(fdl.errors.DTypeError, match="max_pool2d"):
        L.max_pool2d(2).forward({}, np.ones((1, 1, 2, 2), np.int64))
    with pytest.raises(ValueError, match="at most half the kernel"):
        L.max_pool2d(2, padding=2)
