"""The per-offset products of ``_conv_depthwise`` against the GEMM forms of ``_conv_gemm``.

Both compute the sums of a convolution with one input channel per group, in a different order,
so they agree to rounding: in float64 within ``1e-12`` relative to the magnitude of the terms,
over hypothesis-drawn shapes, strides, padding, dilation, channel counts and multipliers (up to
:data:`MAX_MULTIPLIER` outputs per channel). Both forms are checked: the strided taps (any
stride) and the channel-major planes of the layer's entry points (stride 1). Blocks are made as
small as they go here (one sample; 256 columns), so the block loops are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import threads
from functional_dl.layers import _conv_depthwise, _depthwise_planes
from functional_dl.layers._conv_depthwise import (
    MAX_MULTIPLIER,
    depthwise_backward,
    depthwise_correlate,
    depthwise_forward,
    depthwise_input_grad,
    depthwise_weight_grad,
    is_depthwise,
    sample_blocks,
)
from functional_dl.layers._conv_gemm import (
    channels_major,
    correlate,
    input_grad_per_offset,
    weight_grad_per_offset,
)
from functional_dl.layers._windows import crop, out_sizes, pad
from tests.layers.test_conv import ConvConfig, conv_configs

T = TypeVar("T")
R = TypeVar("R")


def _no_limit() -> None:
    return None


def _two_cores() -> int:
    return 2


def depthwise_configs() -> st.SearchStrategy[ConvConfig]:
    """Small depthwise convolutions: ``groups = C``, ``O = m C`` with ``m <= MAX_MULTIPLIER``."""
    return conv_configs(max_multiplier=MAX_MULTIPLIER)


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_conv_depthwise, "BLOCK_BYTES", 1)
    monkeypatch.setattr(_depthwise_planes, "BLOCK_BYTES", 1)


def _operands(config: ConvConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    params, x = config.params_and_input(0)
    xp = pad(x, config.pads)
    out = out_sizes(xp.shape[2:], config.kernel, config.stride, config.dilation)
    dy = fdl.random.normal(fdl.random.key(3), (config.batch, config.out_channels, *out), np.float64)
    b = fdl.random.normal(fdl.random.key(4), (config.out_channels,), np.float64)
    return np.asarray(params["w"]), b, xp, dy, out


def _assert_close(fast: np.ndarray, reference: np.ndarray, scale: float) -> None:
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    assert fast.flags.c_contiguous
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12 * scale)


@given(depthwise_configs())
def test_forward_matches_the_gemm(config: ConvConfig) -> None:
    w, b, xp, _, out = _operands(config)
    assert is_depthwise(w.shape, config.groups)
    s, d, g = config.stride, config.dilation, config.groups
    for bias in (b, None):
        reference = correlate(xp, w, stride=s, dilation=d, groups=g, bias=bias)
        fast = depthwise_correlate(xp, w, stride=s, dilation=d, out=out, bias=bias)
        _assert_close(fast, reference, scale=float(np.abs(w).sum() * np.abs(xp).max() + np.abs(b).max()) + 1)


@given(depthwise_configs())
def test_weight_grad_matches_the_per_offset_reference(config: ConvConfig) -> None:
    w, _, xp, dy, out = _operands(config)
    k, s, d = config.kernel, config.stride, config.dilation
    reference = weight_grad_per_offset(
        xp, channels_major(dy, config.groups), kernel=k, stride=s, dilation=d, out=out
    )
    fast = depthwise_weight_grad(xp, dy, kernel=k, stride=s, dilation=d)
    assert fast.shape == w.shape
    _assert_close(fast, reference, scale=float(np.abs(xp).max() * np.abs(dy).sum()) + 1.0)


def _check_input_grad(config: ConvConfig) -> None:
    w, _, xp, dy, out = _operands(config)
    reference = input_grad_per_offset(
        channels_major(dy, config.groups),
        w,
        n=config.batch,
        padded=xp.shape[2:],
        stride=config.stride,
        dilation=config.dilation,
        out=out,
    )
    fast = depthwise_input_grad(
        dy,
        w,
        channels=config.in_channels,
        spatial=config.spatial,
        pads=config.pads,
        stride=config.stride,
        dilation=config.dilation,
    )
    _assert_close(fast, crop(reference, config.pads), scale=float(np.abs(w).sum() * np.abs(dy).max()) + 1.0)


@given(depthwise_configs())
def test_input_grad_is_the_cropped_per_offset_reference(config: ConvConfig) -> None:
    _check_input_grad(config)


@pytest.mark.parametrize(
    "config",
    [
        # Padded length 5, one window at stride 3: offsets 0 and 1 read only the left padding.
        ConvConfig(1, 2, 2, 4, (1,), (3,), (3,), ((2, 2),), (1,), 2, True),
        # A 1-tap kernel at stride 2 reaches every other entry: no offset covers dx (zero-filled).
        ConvConfig(1, 2, 2, 2, (4,), (1,), (2,), ((0, 0),), (1,), 2, True),
    ],
    ids=["offsets-in-padding", "nothing-covers-dx"],
)
def test_input_grad_at_the_edges(config: ConvConfig) -> None:
    _check_input_grad(config)


@given(depthwise_configs(), st.booleans())
def test_the_layers_entry_points_match_the_gemms(config: ConvConfig, stride_one: bool) -> None:
    if stride_one:  # the channel-major planes; other strides go to the strided taps
        config = config._replace(stride=(1,) * config.nd)
    _, x = config.params_and_input(0)
    w, b, xp, dy, out = _operands(config)
    s, d, g, pads = config.stride, config.dilation, config.groups, config.pads
    y, taps = depthwise_forward(x, w, b, pads=pads, stride=s, dilation=d)
    _assert_close(
        y, correlate(xp, w, stride=s, dilation=d, groups=g, bias=b), scale=float(np.abs(y).max()) + 1
    )
    dx, dw = depthwise_backward(taps, dy, w, spatial=config.spatial, pads=pads, stride=s, dilation=d)
    dy_cm = channels_major(dy, g)
    ref_dw = weight_grad_per_offset(xp, dy_cm, kernel=config.kernel, stride=s, dilation=d, out=out)
    _assert_close(dw, ref_dw, scale=float(np.abs(xp).max() * np.abs(dy).sum()) + 1.0)
    ref_dxp = input_grad_per_offset(
        dy_cm, w, n=config.batch, padded=xp.shape[2:], stride=s, dilation=d, out=out
    )
    assert dx is not None
    _assert_close(dx, crop(ref_dxp, pads), scale=float(np.abs(w).sum() * np.abs(dy).max()) + 1.0)
    no_dx, dw_alone = depthwise_backward(
        taps, dy, w, spatial=config.spatial, pads=pads, stride=s, dilation=d, input_grad=False
    )
    assert no_dx is None and dw_alone.tobytes() == dw.tobytes()


def _count_shared_out(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lift the suite's thread limits, and record the thread count of every piece of work shared out."""
    monkeypatch.setattr(_depthwise_planes, "THREADED_FROM", 0)
    monkeypatch.setattr(threads, "_pool_limits", _no_limit)
    monkeypatch.setattr(threads, "_cores", _two_cores)
    counts: list[int] = []
    real_map = threads.parallel_map

    def counting_map(fn: Callable[[T], R], items: Sequence[T], n: int) -> list[R]:
        counts.extend([n] * len(items))
        return real_map(fn, items, n)

    monkeypatch.setattr(threads, "parallel_map", counting_map)
    return counts


def test_planes_give_the_same_bits_on_one_thread_and_two(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _count_shared_out(monkeypatch)
    config = ConvConfig(2, 3, 4, 8, (9, 7), (3, 3), (1, 1), ((1, 1), (2, 0)), (1, 2), 4, True)
    _, x = config.params_and_input(0)
    w, b, _, dy, _ = _operands(config)
    results = []
    for n in (1, 2):
        threads.set_num_threads(n)
        y, taps = depthwise_forward(x, w, b, pads=config.pads, stride=(1, 1), dilation=config.dilation)
        dx, dw = depthwise_backward(
            taps, dy, w, spatial=config.spatial, pads=config.pads, stride=(1, 1), dilation=config.dilation
        )
        assert dx is not None
        results.append([a.tobytes() for a in (y, dx, dw)])
    threads.set_num_threads(None)
    assert results[0] == results[1]
    assert 2 in counts and counts.count(2) > 2  # the second run did share its work out


def test_the_depthwise_layer_gives_the_same_bits_on_one_thread_and_two(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Through the public layer, training (x and params' grads) as a network would.
    counts = _count_shared_out(monkeypatch)
    layer = L.conv2d(8, 3, padding=1, groups=4)
    _, params = layer.init(fdl.random.key(0), (None, 4, 12, 10))
    x = fdl.random.normal(fdl.random.key(1), (3, 4, 12, 10), np.float32)
    results = []
    for n in (1, 2):
        threads.set_num_threads(n)
        y, cache = layer.forward(params, x)
        dx, grads = layer.backward(params, cache, np.cos(y))
        results.append([a.tobytes() for a in (y, dx, grads["w"], grads["b"])])
    threads.set_num_threads(None)
    assert results[0] == results[1]
    assert counts.count(2) > 2


def test_float32_stays_float32() -> None:
    config = ConvConfig(2, 2, 3, 6, (5, 6), (3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 3, True)
    w, b, xp, dy, out = _operands(config)
    w, b, xp, dy = (a.astype(np.float32) for a in (w, b, xp, dy))
    s, d = config.stride, config.dilation
    y = depthwise_correlate(xp, w, stride=s, dilation=d, out=out, bias=b)
    dw = depthwise_weight_grad(xp, dy, kernel=config.kernel, stride=s, dilation=d)
    dx = depthwise_input_grad(
        dy, w, channels=3, spatial=config.spatial, pads=config.pads, stride=s, dilation=d
    )
    assert y.dtype == dw.dtype == dx.dtype == np.float32


def test_which_convolutions_take_the_depthwise_path() -> None:
    assert is_depthwise((32, 1, 3, 3), 32)  # depthwise
    assert is_depthwise((MAX_MULTIPLIER * 8, 1, 3, 3), 8)  # a few outputs per channel
    assert not is_depthwise((MAX_MULTIPLIER * 8 + 8, 1, 3, 3), 8)  # many: one GEMM of O rows
    assert not is_depthwise((32, 1, 3, 3), 1)  # one input channel, 32 outputs: a first layer
    assert not is_depthwise((32, 2, 3, 3), 16)  # two input channels per group


def test_sample_blocks_cover_the_batch_in_order() -> None:
    assert sample_blocks(5, 1 << 30) == [slice(0, 1), slice(1, 2), slice(2, 3), slice(3, 4), slice(4, 5)]


def test_the_layer_takes_the_depthwise_path_and_agrees_with_grouped_gemms() -> None:
    layer = L.conv2d(6, 3, padding=1, stride=(1, 2), groups=3, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 3, 5, 6))
    x = fdl.random.normal(fdl.random.key(1), (2, 3, 5, 6), np.float64)
    y, cache = layer.forward(params, x)
    assert cache.col.shape == (2, 3, 7, 8)  # the padded input, not an im2col matrix
    xp = pad(x, ((1, 1), (1, 1)))
    np.testing.assert_allclose(
        y, correlate(xp, params["w"], stride=(1, 2), dilation=(1, 1), groups=3, bias=params["b"]), atol=1e-12
    )
