"""Pooling layers: finite differences, the tie rule, errors. ``test_pool_torch.py`` compares with PyTorch."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given
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
    dilation: tuple[int, ...]  # all ones for average pooling
    ceil_mode: bool

    def layer(self) -> fdl.Layer[Any]:
        if self.kind == "max":
            make_max = L.max_pool1d if self.nd == 1 else L.max_pool2d
            return make_max(
                self.kernel, self.stride, self.pads, dilation=self.dilation, ceil_mode=self.ceil_mode
            )
        make_avg = L.avg_pool1d if self.nd == 1 else L.avg_pool2d
        return make_avg(
            self.kernel,
            self.stride,
            self.pads,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
        )


def out_length(n: int, pads: tuple[int, int], k: int, s: int, d: int, *, ceil_mode: bool) -> int:
    """PyTorch's output length (``pooling_output_shape``), written out again independently."""
    numerator = n + pads[0] + pads[1] - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= n + pads[0]:
        out -= 1
    return out


def drops_last_window(cfg: PoolConfig) -> bool:
    """Whether ceil mode drops a last window that would start in the right padding on some axis."""
    axes = zip(cfg.shape[2:], cfg.pads, cfg.kernel, cfg.stride, cfg.dilation, strict=True)
    return cfg.ceil_mode and any(
        out_length(n, p, k, s, d, ceil_mode=True) < -(-(n + sum(p) - d * (k - 1) - 1) // s) + 1
        for n, p, k, s, d in axes
    )


def has_empty_window(cfg: PoolConfig) -> bool:
    """Whether some max pooling window holds no input entry (only padding), so its output is -inf.

    Only dilated windows in the padding can; PyTorch's backward fails on them.
    """
    y, _ = cfg.layer().forward({}, np.zeros(cfg.shape))
    return not bool(np.all(np.isfinite(y)))


@st.composite
def pool_configs(draw: st.DrawFn, kind: str | None = None, ceil_mode: bool | None = None) -> PoolConfig:
    """Small poolings: overlapping and gapped windows (stride < or > kernel), asymmetric padding.

    Also dilated max pooling and ceil mode (windows running past the padded input, dropped last
    windows); never a max pooling window holding only padding.
    """
    nd = draw(st.sampled_from([1, 2]))
    kind = kind or draw(st.sampled_from(["max", "avg"]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) if kind == "max" else 1 for _ in range(nd))
    pads = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in kernel)
    ceil = draw(st.booleans()) if ceil_mode is None else ceil_mode
    # The smallest input PyTorch accepts: the window fits (floor) or overhangs by less than a stride (ceil).
    smallest = [
        d * (k - 1) + 1 - lo - hi - (s - 1 if ceil else 0)
        for k, d, s, (lo, hi) in zip(kernel, dilation, stride, pads, strict=True)
    ]
    spatial = tuple(draw(st.integers(max(1, m), max(1, m) + 6)) for m in smallest)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial)
    cfg = PoolConfig(kind, nd, shape, kernel, stride, pads, draw(st.booleans()), dilation, ceil)
    assume(not has_empty_window(cfg))
    return cfg


@st.composite
def dropping_configs(draw: st.DrawFn, kind: str | None = None) -> PoolConfig:
    """Ceil-mode poolings whose last window on the first spatial axis is dropped by PyTorch's rule.

    The ceil formula gives ``ceil(r / s) + 1`` windows, ``r = n + lo + hi - e``; the last one starts
    at ``ceil(r / s) s - lo``, at or past ``n`` exactly when ``ceil(r / s) s - r >= e - hi``. So draw
    ``s > e - hi`` and ``r = q s - t`` with ``e - hi <= t < s``.
    """
    cfg = draw(pool_configs(kind=kind, ceil_mode=True))
    k, d = cfg.kernel[0], cfg.dilation[0]
    lo = draw(st.integers(0, k // 2))
    hi = draw(st.integers(1, k // 2)) if k > 1 else 0
    e = d * (k - 1) + 1
    s = draw(st.integers(max(1, e - hi + 1), e - hi + 3))
    t = draw(st.integers(max(0, e - hi), s - 1))
    q = draw(st.integers(1, 3))  # n >= 1 + e - lo - hi >= 1
    n = q * s - t - lo - hi + e
    cfg = cfg._replace(
        shape=(*cfg.shape[:2], n, *cfg.shape[3:]),
        stride=(s, *cfg.stride[1:]),
        pads=((lo, hi), *cfg.pads[1:]),
    )
    assume(not has_empty_window(cfg))
    return cfg


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


@given(cfg=pool_configs())
def test_pool_output_size_is_pytorchs(cfg: PoolConfig) -> None:
    out_shape, _ = cfg.layer().init(fdl.random.key(0), (None, *cfg.shape[1:]))
    axes = zip(cfg.shape[2:], cfg.pads, cfg.kernel, cfg.stride, cfg.dilation, strict=True)
    assert out_shape[2:] == tuple(
        out_length(n, p, k, s, d, ceil_mode=cfg.ceil_mode) for n, p, k, s, d in axes
    )


@given(cfg=dropping_configs(), seed=st.integers(0, 2**16))
def test_ceil_mode_dropped_last_window(cfg: PoolConfig, seed: int) -> None:
    assert drops_last_window(cfg)
    x = distinct_values(cfg.shape, seed)
    y, _ = cfg.layer().forward({}, x)
    axes = zip(cfg.shape[2:], cfg.pads, cfg.kernel, cfg.stride, cfg.dilation, strict=True)
    assert y.shape[2:] == tuple(out_length(n, p, k, s, d, ceil_mode=True) for n, p, k, s, d in axes)
    report = check_gradients(cfg.layer(), {}, x)
    assert report.checked == x.size


def test_ceil_mode_drops_a_window_starting_in_the_right_padding() -> None:
    # L = 5, k = s = 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the 4th would start
    # at padded index 6, in the right padding: 3 windows, on [-1, 0], [1, 2], [3, 4].
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    y_max, cache = L.max_pool1d(2, stride=2, padding=1, ceil_mode=True).forward({}, x)
    assert y_max.ravel().tolist() == [1.0, 3.0, 5.0]
    dx, _ = L.max_pool1d(2, stride=2, padding=1, ceil_mode=True).backward({}, cache, np.ones_like(y_max))
    assert dx.ravel().tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    y_avg, _ = L.avg_pool1d(2, stride=2, padding=1, ceil_mode=True).forward({}, x)
    assert y_avg.ravel().tolist() == [0.5, 2.5, 4.5]
    # L = 4: the 3rd window starts at padded index 4, the last input entry: kept.
    y4, _ = L.max_pool1d(2, stride=2, padding=1, ceil_mode=True).forward({}, x[..., :4])
    assert y4.ravel().tolist() == [1.0, 3.0, 4.0]


def test_ceil_mode_average_divisor_counts_padding_but_not_the_overhang() -> None:
    # L = 4, k = 3, s = 2, padding 1: the last window covers x[3], the right padding and one
    # position past the padded input. count_include_pad=True divides by 2, False by 1.
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    y_inc, cache = L.avg_pool1d(3, stride=2, padding=1, ceil_mode=True).forward({}, x)
    y_exc, _ = L.avg_pool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False).forward({}, x)
    np.testing.assert_allclose(y_inc.ravel(), [3 / 3, 9 / 3, 4 / 2], rtol=1e-15)
    np.testing.assert_allclose(y_exc.ravel(), [3 / 2, 9 / 3, 4 / 1], rtol=1e-15)
    dx, _ = L.avg_pool1d(3, stride=2, padding=1, ceil_mode=True).backward({}, cache, np.ones_like(y_inc))
    np.testing.assert_allclose(dx.ravel(), [1 / 3, 2 / 3, 1 / 3, 1 / 3 + 1 / 2], rtol=1e-15)


def test_dilated_max_pool_reads_every_dth_entry() -> None:
    x = np.array([[[5.0, 9.0, 1.0, 0.0, 2.0]]])
    y, cache = L.max_pool1d(2, stride=1, dilation=3).forward({}, x)  # windows {0, 3}, {1, 4}
    assert y.ravel().tolist() == [5.0, 9.0]
    dx, _ = L.max_pool1d(2, stride=1, dilation=3).backward({}, cache, np.array([[[1.0, 2.0]]]))
    assert dx.ravel().tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]


def test_ceil_mode_accepts_a_kernel_overhanging_by_less_than_a_stride() -> None:
    y, _ = L.max_pool1d(3, stride=3, ceil_mode=True).forward({}, np.array([[[1.0, 2.0]]]))
    assert y.ravel().tolist() == [2.0]
    with pytest.raises(ShapeError, match=r"max_pool1d: kernel of extent \(3,\) is larger than .* ceil_mode"):
        L.max_pool1d(3, stride=1, ceil_mode=True).forward({}, np.ones((1, 1, 2)))


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


def test_pool_rejects_bad_dilation_and_flags() -> None:
    with pytest.raises(ValueError, match=r"max_pool2d: dilation must be an int >= 1 or 2 of them, got 0"):
        L.max_pool2d(2, dilation=0)
    with pytest.raises(ValueError, match=r"max_pool1d: dilation must be an int >= 1 or 1 of them"):
        L.max_pool1d(2, dilation=(1, 2))
    with pytest.raises(fdl.errors.DomainError, match=r"avg_pool2d: ceil_mode must be a bool, got 'yes'"):
        L.avg_pool2d(2, ceil_mode="yes")  # type: ignore[arg-type]
    with pytest.raises(fdl.errors.DomainError, match=r"avg_pool1d: count_include_pad must be a bool, got 2"):
        L.avg_pool1d(2, count_include_pad=2)  # type: ignore[arg-type]
