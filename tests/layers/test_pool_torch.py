"""Pooling against ``torch.nn.functional`` in float64: outputs and input gradients to 1e-10 relative.

Max pooling is also compared on inputs full of ties (small integers), where only the tie rule
(first maximal tap in row-major order) decides which input receives the gradient; the adaptive
and global max poolings also on inputs with NaNs (PyTorch's last NaN of a bin wins). Dilation and
ceil mode are drawn throughout, and ceil-mode poolings whose last window PyTorch drops (it would
start in the right padding) are compared separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from tests.layers.test_adaptive_pool import tie_values
from tests.layers.test_conv_torch import rel_diff
from tests.layers.test_pool import (
    PoolConfig,
    distinct_values,
    dropping_configs,
    drops_last_window,
    pool_configs,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

RTOL = 1e-10


def _torch_pool(cfg: PoolConfig, xt: Any) -> Any:
    # PyTorch pads symmetrically: give it min(before, after) and pad the remainder explicitly with
    # -inf, which max pooling never selects (only used for max without ceil mode, whose dropping
    # rule depends on where the input ends; average tests are symmetric).
    sym = tuple(min(lo, hi) for lo, hi in cfg.pads)
    rest = tuple(
        p for (lo, hi), s in zip(reversed(cfg.pads), reversed(sym), strict=True) for p in (lo - s, hi - s)
    )
    if cfg.kind == "max":
        assert not (any(rest) and cfg.ceil_mode)
        pool = F.max_pool1d if cfg.nd == 1 else F.max_pool2d
        padded = F.pad(xt, rest, value=-float("inf"))
        return pool(padded, cfg.kernel, cfg.stride, sym, dilation=cfg.dilation, ceil_mode=cfg.ceil_mode)
    assert not any(rest)
    pool = F.avg_pool1d if cfg.nd == 1 else F.avg_pool2d
    return pool(
        xt, cfg.kernel, cfg.stride, sym, ceil_mode=cfg.ceil_mode, count_include_pad=cfg.count_include_pad
    )


def _symmetric(cfg: PoolConfig) -> bool:
    return all(lo == hi for lo, hi in cfg.pads)


def _floor_mode(cfg: PoolConfig) -> bool:
    return not cfg.ceil_mode


def _compare(cfg: PoolConfig, x: np.ndarray, seed: int) -> None:
    layer = cfg.layer()
    y, cache = layer.forward({}, x)
    dy = fdl.random.normal(fdl.random.key(seed), y.shape, np.float64)
    dx, _ = layer.backward({}, cache, dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_pool(cfg, xt)
    yt.backward(torch.tensor(dy))
    assert y.shape == tuple(yt.shape)
    assert rel_diff(y, yt.detach().numpy()) <= RTOL
    assert rel_diff(dx, xt.grad.numpy()) <= RTOL


@given(cfg=pool_configs().filter(_symmetric), seed=st.integers(0, 2**16))
def test_pool_matches_torch(cfg: PoolConfig, seed: int) -> None:
    _compare(cfg, distinct_values(cfg.shape, seed), seed)


@given(cfg=pool_configs(kind="max").filter(_symmetric), seed=st.integers(0, 2**16))
def test_max_pool_tie_rule_matches_torch(cfg: PoolConfig, seed: int) -> None:
    x = np.round(fdl.random.normal(fdl.random.key(seed), cfg.shape, np.float64))
    _compare(cfg, x, seed)


@given(cfg=pool_configs(kind="max").filter(_floor_mode), seed=st.integers(0, 2**16))
def test_max_pool_asymmetric_padding_matches_padded_torch(cfg: PoolConfig, seed: int) -> None:
    _compare(cfg, distinct_values(cfg.shape, seed), seed)


@given(cfg=dropping_configs().filter(_symmetric), seed=st.integers(0, 2**16))
def test_ceil_mode_dropped_last_window_matches_torch(cfg: PoolConfig, seed: int) -> None:
    assert drops_last_window(cfg)
    _compare(cfg, distinct_values(cfg.shape, seed), seed)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("length", [4, 5, 6, 7])
def test_ceil_mode_edge_lengths_match_torch(kind: str, count_include_pad: bool, length: int) -> None:
    """Ceil mode with stride 2 and padding 1 on lengths around the edge case.

    Kernel 2 drops the last window for odd lengths (it would start in the right padding) and keeps
    it for even ones; kernel 3 keeps it, and for even lengths it runs past the padded input.
    """
    for kernel in (2, 3):
        cfg = PoolConfig(kind, 1, (2, 3, length), (kernel,), (2,), ((1, 1),), count_include_pad, (1,), True)
        assert drops_last_window(cfg) == (kernel == 2 and length % 2 == 1)
        _compare(cfg, distinct_values(cfg.shape, length), length)


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7)),
    out=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool_matches_torch(shape: tuple[int, ...], out: tuple[int, int], seed: int) -> None:
    x = fdl.random.normal(fdl.random.key(seed), shape, np.float64)
    layer = L.adaptive_avg_pool2d(out)
    y, cache = layer.forward({}, x)
    dy = fdl.random.normal(fdl.random.key(seed + 1), y.shape, np.float64)
    dx, _ = layer.backward({}, cache, dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.adaptive_avg_pool2d(xt, out)
    yt.backward(torch.tensor(dy))
    assert rel_diff(y, yt.detach().numpy()) <= RTOL
    assert rel_diff(dx, xt.grad.numpy()) <= RTOL


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9)),
    out=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool1d_matches_torch(shape: tuple[int, ...], out: int, seed: int) -> None:
    x = fdl.random.normal(fdl.random.key(seed), shape, np.float64)
    _compare_adaptive(L.adaptive_avg_pool1d(out), F.adaptive_avg_pool1d, x, out, seed)


def _compare_adaptive(layer: fdl.Layer[Any], theirs: Any, x: np.ndarray, out: Any, seed: int) -> None:
    """Forward and ``dx`` of ``layer`` and of ``theirs(x, out)``; NaNs must sit in the same places."""
    y, cache = layer.forward({}, x)
    dy = fdl.random.normal(fdl.random.key(seed + 1), y.shape, np.float64)
    dx, _ = layer.backward({}, cache, dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt, out)
    yt.backward(torch.tensor(dy).reshape(yt.shape))
    y_torch = yt.detach().numpy().reshape(y.shape)
    assert np.array_equal(np.isnan(y), np.isnan(y_torch))
    assert rel_diff(np.nan_to_num(y), np.nan_to_num(y_torch)) <= RTOL
    assert rel_diff(dx, xt.grad.numpy()) <= RTOL


@st.composite
def _adaptive_max_configs(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int | None, ...]]:
    """An input ``(N, C, *S)`` and an output size: divisible, not, larger than the input, ``None``."""
    nd = draw(st.sampled_from([1, 2]))
    spatial = tuple(draw(st.integers(1, 8)) for _ in range(nd))
    sizes = st.integers(1, 10) if nd == 1 else st.integers(1, 10) | st.none()
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial), tuple(draw(sizes) for _ in range(nd))


@given(
    config=_adaptive_max_configs(),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["distinct", "ties", "nan"]),
)
def test_adaptive_max_pool_matches_torch(
    config: tuple[tuple[int, ...], tuple[int | None, ...]], seed: int, kind: str
) -> None:
    """Distinct values, ties (PyTorch's first maximum) and NaNs (its last NaN) alike."""
    shape, out = config
    x = tie_values(shape, seed, kind)
    if len(out) == 1:
        _compare_adaptive(L.adaptive_max_pool1d(out[0]), F.adaptive_max_pool1d, x, out[0], seed)
    else:
        _compare_adaptive(L.adaptive_max_pool2d(out), F.adaptive_max_pool2d, x, out, seed)


@given(
    shape=st.lists(st.integers(1, 5), min_size=3, max_size=5).map(tuple),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["distinct", "ties", "nan"]),
)
def test_global_max_pool_matches_torch_adaptive_max_pool_to_one(
    shape: tuple[int, ...], seed: int, kind: str
) -> None:
    x = tie_values(shape, seed, kind)
    theirs = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)[len(shape) - 3]
    _compare_adaptive(L.global_max_pool(), theirs, x, 1, seed)
