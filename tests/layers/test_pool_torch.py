"""Pooling against ``torch.nn.functional`` in float64: outputs and input gradients to 1e-10 relative.

Max pooling is also compared on inputs full of ties (small integers), where only the tie rule
(first maximal tap in row-major order) decides which input receives the gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from tests.layers.test_conv_torch import rel_diff
from tests.layers.test_pool import PoolConfig, distinct_values, pool_configs

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

RTOL = 1e-10


def _torch_pool(cfg: PoolConfig, xt: Any) -> Any:
    # PyTorch pads symmetrically: give it min(before, after) and pad the remainder explicitly with
    # -inf, which max pooling never selects (only used for max; average tests are symmetric).
    sym = tuple(min(lo, hi) for lo, hi in cfg.pads)
    rest = tuple(
        p for (lo, hi), s in zip(reversed(cfg.pads), reversed(sym), strict=True) for p in (lo - s, hi - s)
    )
    if cfg.kind == "max":
        pool = F.max_pool1d if cfg.nd == 1 else F.max_pool2d
        return pool(F.pad(xt, rest, value=-float("inf")), cfg.kernel, cfg.stride, sym)
    assert not any(rest)
    pool = F.avg_pool1d if cfg.nd == 1 else F.avg_pool2d
    return pool(xt, cfg.kernel, cfg.stride, sym, count_include_pad=cfg.count_include_pad)


def _symmetric(cfg: PoolConfig) -> bool:
    return all(lo == hi for lo, hi in cfg.pads)


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


@given(cfg=pool_configs(kind="max"), seed=st.integers(0, 2**16))
def test_max_pool_asymmetric_padding_matches_padded_torch(cfg: PoolConfig, seed: int) -> None:
    _compare(cfg, distinct_values(cfg.shape, seed), seed)


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
