"""The one-GEMM products of ``_conv_gemm`` against their per-offset reference forms.

Both compute the same sums in a different order, so they agree to rounding: in float64 within
``1e-12`` relative to the magnitude of the terms, over hypothesis-drawn shapes, strides, padding,
dilation and groups (the configurations of ``test_conv.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl.layers._conv_gemm import (
    channels_major,
    correlate_channels_major,
    correlate_per_sample,
    im2col,
    input_grad,
    input_grad_cropped,
    input_grad_per_offset,
    samples_per_chunk,
    weight_grad,
    weight_grad_per_offset,
)
from functional_dl.layers._windows import crop, out_sizes, pad
from tests.layers.test_conv import ConvConfig, conv_configs


def _operands(config: ConvConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    params, x = config.params_and_input(0)
    xp = pad(x, config.pads)
    out = out_sizes(xp.shape[2:], config.kernel, config.stride, config.dilation)
    dy = fdl.random.normal(fdl.random.key(3), (config.batch, config.out_channels, *out), np.float64)
    return np.asarray(params["w"]), xp, dy, out


def _assert_close(fast: np.ndarray, reference: np.ndarray, scale: float) -> None:
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-12 * scale)


@given(conv_configs())
def test_weight_grad_matches_per_offset_reference(config: ConvConfig) -> None:
    w, xp, dy, out = _operands(config)
    dy_cm = channels_major(dy, config.groups)
    fast, reference = (
        grad(xp, dy_cm, kernel=config.kernel, stride=config.stride, dilation=config.dilation, out=out)
        for grad in (weight_grad, weight_grad_per_offset)
    )
    assert fast.shape == w.shape
    _assert_close(fast, reference, scale=float(np.abs(xp).max() * np.abs(dy).sum()) + 1.0)


@given(conv_configs())
def test_input_grad_matches_per_offset_reference(config: ConvConfig) -> None:
    w, xp, dy, out = _operands(config)
    dy_cm = channels_major(dy, config.groups)
    fast, reference = (
        grad(
            dy_cm,
            w,
            n=config.batch,
            padded=xp.shape[2:],
            stride=config.stride,
            dilation=config.dilation,
            out=out,
        )
        for grad in (input_grad, input_grad_per_offset)
    )
    assert fast.shape == xp.shape
    _assert_close(fast, reference, scale=float(np.abs(w).sum() * np.abs(dy).max()) + 1.0)


@given(conv_configs())
def test_per_sample_forward_matches_the_channels_major_gemm(config: ConvConfig) -> None:
    w, xp, _, out = _operands(config)
    g = config.groups
    col = im2col(xp, config.kernel, config.stride, config.dilation, g)
    wg = w.reshape(g, w.shape[0] // g, -1)
    reference = correlate_channels_major(wg, col).reshape(w.shape[0], config.batch, *out).swapaxes(0, 1)
    fast = correlate_per_sample(wg, col, config.batch).reshape(config.batch, w.shape[0], *out)
    assert fast.flags.c_contiguous
    _assert_close(fast, reference, scale=float(np.abs(w).sum() * np.abs(xp).max()) + 1.0)


def _check_cropped_input_grad(config: ConvConfig, chunk: int | None = None) -> None:
    w, xp, dy, out = _operands(config)
    dy_cm = channels_major(dy, config.groups)
    padded = xp.shape[2:]
    reference = input_grad_per_offset(
        dy_cm, w, n=config.batch, padded=padded, stride=config.stride, dilation=config.dilation, out=out
    )
    spatial = tuple(m - lo - hi for m, (lo, hi) in zip(padded, config.pads, strict=True))
    fast = input_grad_cropped(
        dy_cm,
        w,
        n=config.batch,
        spatial=spatial,
        pads=config.pads,
        stride=config.stride,
        dilation=config.dilation,
        out=out,
        chunk=chunk,
    )
    assert fast.flags.c_contiguous
    _assert_close(fast, crop(reference, config.pads), scale=float(np.abs(w).sum() * np.abs(dy).max()) + 1.0)


@given(conv_configs())
def test_cropped_input_grad_is_the_cropped_reference(config: ConvConfig) -> None:
    _check_cropped_input_grad(config)


@given(conv_configs(), st.data())
def test_cropped_input_grad_in_chunks_of_samples(config: ConvConfig, data: st.DataObject) -> None:
    _check_cropped_input_grad(config, chunk=data.draw(st.integers(1, config.batch + 1), label="chunk"))


def test_cropped_input_grad_with_a_shorter_last_chunk() -> None:
    # 5 samples in chunks of 1, 2 and 4 leave shorter last chunks; stride 1, padding 1: the copy-first path.
    config = ConvConfig(2, 5, 3, 4, (5, 4), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True)
    for chunk in (1, 2, 4):
        _check_cropped_input_grad(config, chunk=chunk)


def test_samples_per_chunk_keeps_dcol_within_its_budget() -> None:
    assert samples_per_chunk(64, 288 * 784 * 4) == 4  # 64x32x28x28, 3x3: 0.9 MB of dcol per sample
    assert samples_per_chunk(3, 1) == 3  # never more than the batch
    assert samples_per_chunk(64, 1 << 30) == 1  # at least one sample, however large
    assert samples_per_chunk(0, 100) == 1  # an empty batch runs no chunk at all


def test_cropped_input_grad_when_offsets_read_only_padding() -> None:
    # Padded length 5, one window at stride 3: kernel offsets 0 and 1 read only the left padding.
    _check_cropped_input_grad(ConvConfig(1, 2, 3, 2, (1,), (3,), (3,), ((2, 2),), (1,), 1, True))


def test_fast_forms_keep_float32() -> None:
    config = ConvConfig(2, 2, 4, 4, (5, 6), (3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2, True)
    w, xp, dy, out = _operands(config)
    w32, xp32, dy_cm32 = w.astype(np.float32), xp.astype(np.float32), channels_major(dy.astype(np.float32), 2)
    dw = weight_grad(
        xp32, dy_cm32, kernel=config.kernel, stride=config.stride, dilation=config.dilation, out=out
    )
    dxp = input_grad(
        dy_cm32, w32, n=2, padded=xp.shape[2:], stride=config.stride, dilation=config.dilation, out=out
    )
    assert dw.dtype == np.float32 and dxp.dtype == np.float32
