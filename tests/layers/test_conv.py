"""conv1d, conv2d, conv_transpose1d/2d: finite differences, errors, memory of the backward pass.

Configurations are drawn by hypothesis, deliberately including awkward ones: kernels larger than
the stride, padding larger than half the kernel and asymmetric padding, odd sizes, 1x1 kernels,
dilation, grouped and depthwise convolutions. ``test_conv_torch.py`` runs the same
configurations against PyTorch.
"""

from __future__ import annotations

import tracemalloc
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DTypeError, ParamsError, ShapeError
from functional_dl.layers._windows import Pads
from functional_dl.testing import check_gradients, check_purity


class ConvConfig(NamedTuple):
    """One convolution to test: its layer, the input, and the hyperparameters for PyTorch."""

    nd: int
    batch: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: Pads
    dilation: tuple[int, ...]
    groups: int
    use_bias: bool

    def layer(self) -> fdl.Layer[Any]:
        make = L.conv1d if self.nd == 1 else L.conv2d
        return make(
            self.out_channels,
            self.kernel,
            stride=self.stride,
            padding=self.pads,
            dilation=self.dilation,
            groups=self.groups,
            use_bias=self.use_bias,
            dtype=np.float64,
        )

    def params_and_input(self, seed: int) -> tuple[fdl.Params, np.ndarray]:
        key = fdl.random.key(seed)
        _, params = self.layer().init(key, (None, self.in_channels, *self.spatial))
        # Non-zero biases, so that a wrong bias gradient cannot hide behind zeros.
        params = {
            k: v + 0.1 * fdl.random.normal(fdl.random.fold_in(key, 1), v.shape, np.float64)
            for k, v in params.items()
        }
        x = fdl.random.normal(
            fdl.random.fold_in(key, 2), (self.batch, self.in_channels, *self.spatial), np.float64
        )
        return params, x


@st.composite
def conv_configs(draw: st.DrawFn, nd: int | None = None, max_multiplier: int | None = None) -> ConvConfig:
    """Small convolutions over the whole hyperparameter space (sizes kept tiny for speed).

    With ``max_multiplier``, depthwise ones only: one input channel per group, and up to that
    many outputs per channel.
    """
    nd = draw(st.sampled_from([1, 2])) if nd is None else nd
    groups = draw(st.integers(1, 3))
    if max_multiplier is None:
        depthwise = draw(st.booleans())
        cin = groups * (1 if depthwise else draw(st.integers(1, 2)))
        cout = groups * (1 if depthwise else draw(st.integers(1, 2)))
    else:
        cin, cout = groups, groups * draw(st.integers(1, max_multiplier))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    spatial = []
    for k, d, (lo, hi) in zip(kernel, dilation, pads, strict=True):
        extent = d * (k - 1) + 1
        spatial.append(draw(st.integers(max(1, extent - lo - hi), extent + (5 if nd == 1 else 3))))
    return ConvConfig(
        nd,
        draw(st.integers(1, 2)),
        cin,
        cout,
        tuple(spatial),
        kernel,
        stride,
        pads,
        dilation,
        groups,
        draw(st.booleans()),
    )


class TransposeConfig(NamedTuple):
    """One transposed convolution to test."""

    nd: int
    batch: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    use_bias: bool

    def layer(self) -> fdl.Layer[Any]:
        make = L.conv_transpose1d if self.nd == 1 else L.conv_transpose2d
        return make(
            self.out_channels,
            self.kernel,
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation,
            groups=self.groups,
            use_bias=self.use_bias,
            dtype=np.float64,
        )

    def params_and_input(self, seed: int) -> tuple[fdl.Params, np.ndarray]:
        key = fdl.random.key(seed)
        _, params = self.layer().init(key, (None, self.in_channels, *self.spatial))
        if self.use_bias:  # non-zero, so that a wrong bias gradient cannot hide behind zeros
            params = {
                **params,
                "b": fdl.random.normal(fdl.random.fold_in(key, 1), params["b"].shape, np.float64),
            }
        x = fdl.random.normal(
            fdl.random.fold_in(key, 2), (self.batch, self.in_channels, *self.spatial), np.float64
        )
        return params, x


@st.composite
def transpose_configs(draw: st.DrawFn, nd: int | None = None) -> TransposeConfig:
    """Small transposed convolutions, ``output_padding < max(stride, dilation)``, output non-empty."""
    nd = draw(st.sampled_from([1, 2])) if nd is None else nd
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    spatial = tuple(draw(st.integers(1, 4 if nd == 2 else 6)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    padding = []
    for n, k, s, d, op in zip(spatial, kernel, stride, dilation, output_padding, strict=True):
        full = (n - 1) * s + d * (k - 1) + 1 + op
        padding.append(draw(st.integers(0, (full - 1) // 2)))
    return TransposeConfig(
        nd,
        draw(st.integers(1, 2)),
        groups * draw(st.integers(1, 2)),
        groups * draw(st.integers(1, 2)),
        spatial,
        kernel,
        stride,
        tuple(padding),
        output_padding,
        dilation,
        groups,
        draw(st.booleans()),
    )


@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_finite_differences(cfg: ConvConfig, seed: int) -> None:
    params, x = cfg.params_and_input(seed)
    report = check_gradients(cfg.layer(), params, x)
    assert report.checked == x.size + fdl.params.num_params(params)


@pytest.mark.parametrize("nd", [1, 2])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_conv_transpose_finite_differences(nd: int, data: st.DataObject, seed: int) -> None:
    cfg = data.draw(transpose_configs(nd))
    params, x = cfg.params_and_input(seed)
    report = check_gradients(cfg.layer(), params, x)
    assert report.checked == x.size + fdl.params.num_params(params)


@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_shapes_dtype_and_purity(cfg: ConvConfig, seed: int) -> None:
    layer = cfg.layer()
    params, x = cfg.params_and_input(seed)
    out_shape, _ = layer.init(fdl.random.key(0), (None, cfg.in_channels, *cfg.spatial))
    p32 = fdl.params.cast(params, np.float32)
    y, cache = layer.forward(p32, x.astype(np.float32))
    assert y.shape == (cfg.batch, *out_shape[1:])
    dx, grads = layer.backward(p32, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert y.flags.c_contiguous and dx.flags.c_contiguous
    check_purity(layer, p32, x.astype(np.float32))


def test_same_padding_keeps_size_even_kernel() -> None:
    layer = L.conv2d(2, (4, 3), padding="same", dilation=(1, 2))
    out_shape, params = layer.init(fdl.random.key(0), (None, 3, 7, 6))
    assert out_shape == (None, 2, 7, 6)
    y, _ = layer.forward(params, np.ones((1, 3, 7, 6), np.float32))
    assert y.shape == (1, 2, 7, 6)


def test_valid_padding_is_no_padding() -> None:
    _, params = L.conv2d(2, 3).init(fdl.random.key(0), (None, 1, 5, 5))
    x = fdl.random.normal(fdl.random.key(1), (2, 1, 5, 5))
    y0, _ = L.conv2d(2, 3).forward(params, x)
    y1, _ = L.conv2d(2, 3, padding="valid").forward(params, x)
    assert y0.tobytes() == y1.tobytes()


def test_depthwise_matches_per_channel_convolutions() -> None:
    layer = L.conv2d(3, 3, padding=1, groups=3, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 3, 5, 5))
    x = fdl.random.normal(fdl.random.key(1), (2, 3, 5, 5), np.float64)
    y, _ = layer.forward(params, x)
    single = L.conv2d(1, 3, padding=1, dtype=np.float64)
    for c in range(3):
        part = {"w": params["w"][c : c + 1], "b": params["b"][c : c + 1]}
        yc, _ = single.forward(part, x[:, c : c + 1])
        np.testing.assert_allclose(y[:, c : c + 1], yc, rtol=1e-13)


# --- errors ---------------------------------------------------------------------------------


def _conv2d_params() -> tuple[fdl.Layer[Any], fdl.Params]:
    layer = L.conv2d(4, 3, padding=1)
    _, params = layer.init(fdl.random.key(0), (None, 3, 8, 8))
    return layer, params


def test_wrong_channel_count_names_layer_and_shapes() -> None:
    layer, params = _conv2d_params()
    with pytest.raises(
        ShapeError, match=r"conv2d: expected 3 input channels .*\(4, 3, 3, 3\).*\(2, 5, 8, 8\)"
    ):
        layer.forward(params, np.ones((2, 5, 8, 8), np.float32))


def test_non_4d_input_to_conv2d() -> None:
    layer, params = _conv2d_params()
    with pytest.raises(
        ShapeError, match=r"conv2d: expected a 4-D input \(N, C, H, W\), got shape \(3, 8, 8\)"
    ):
        layer.forward(params, np.ones((3, 8, 8), np.float32))


def test_kernel_larger_than_padded_input() -> None:
    layer = L.conv2d(2, 5, padding=1)
    _, params = layer.init(fdl.random.key(0), (None, 1, 8, 8))
    with pytest.raises(
        ShapeError, match=r"conv2d: kernel of extent \(5, 5\) is larger than the padded input \(4, 4\)"
    ):
        layer.forward(params, np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(ShapeError, match="larger than the padded input"):
        layer.init(fdl.random.key(0), (None, 1, 2, 2))


def test_errors_are_prefixed_inside_serial() -> None:
    net = fdl.serial(L.relu(), L.conv1d(2, 3))
    _, params = net.init(fdl.random.key(0), (None, 2, 6))
    with pytest.raises(ShapeError, match=r"^1\.conv1d: expected 2 input channels"):
        net.forward(params, np.ones((1, 4, 6), np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 2, "padding": "same"},
        {"padding": "full"},
        {"groups": 3},
        {"stride": 0},
        {"padding": (1, 2, 3)},
    ],
)
def test_bad_hyperparameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="conv2d"):
        L.conv2d(4, 3, **kwargs)


def test_conv_transpose_errors() -> None:
    with pytest.raises(ValueError, match="output_padding"):
        L.conv_transpose2d(2, 3, stride=2, output_padding=2)
    layer = L.conv_transpose2d(2, 3)
    _, params = layer.init(fdl.random.key(0), (None, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"conv_transpose2d: expected 3 input channels"):
        layer.forward(params, np.ones((1, 2, 4, 4), np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 2, "output_padding": 2}, r"conv_transpose1d: output_padding \(2,\) must be smaller"),
        ({"padding": "same"}, r"conv_transpose1d: padding must be an int, a tuple or 'valid'"),
        ({"stride": (1, 2)}, r"conv_transpose1d: stride must be an int >= 1 or 1 of them"),
        ({"groups": 2}, r"conv_transpose1d: groups must divide out_channels=3, got 2"),
        ({"dilation": 0}, r"conv_transpose1d: dilation must be an int >= 1"),
    ],
)
def test_conv_transpose1d_bad_hyperparameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        L.conv_transpose1d(3, 2, **kwargs)


def test_conv_transpose1d_bad_inputs_name_the_layer() -> None:
    layer = L.conv_transpose1d(2, 3, padding=2)
    with pytest.raises(ShapeError, match=r"conv_transpose1d: expected an input shape \(N, C, L\)"):
        layer.init(fdl.random.key(0), (None, 3, 4, 4))
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    bad_inputs: list[tuple[np.ndarray, type[Exception], str]] = [
        (np.ones((1, 3, 4, 4), np.float32), ShapeError, r"expected a 3-D input \(N, C, L\), got shape"),
        (np.ones((1, 2, 4), np.float32), ShapeError, r"expected 3 input channels \(weight \(3, 2, 3\)\)"),
        (np.ones((1, 3, 1), np.float32), ShapeError, r"padding \(\(2, 2\),\) leaves no output"),
        (np.ones((1, 3, 4), np.int64), DTypeError, r"expected input of dtype float32"),
        (np.ones((1, 3, 4), np.float64), DTypeError, r"expected input of dtype float32"),
    ]
    for x, error, message in bad_inputs:
        with pytest.raises(error, match=rf"^conv_transpose1d: {message}"):
            layer.forward(params, x)
    _, cache = layer.forward(params, np.ones((1, 3, 4), np.float32))
    with pytest.raises(ShapeError, match=r"^conv_transpose1d: expected dy of shape \(1, 2, 2\)"):
        layer.backward(params, cache, np.ones((1, 2, 3), np.float32))
    with pytest.raises(ParamsError, match=r"^conv_transpose1d: parameter keys do not match"):
        layer.forward({"w": params["w"]}, np.ones((1, 3, 4), np.float32))


# --- memory ---------------------------------------------------------------------------------


def _traced_peak(fn: Any, *args: Any) -> int:
    """Peak bytes allocated by ``fn(*args)`` beyond what existed before (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak - base


def test_backward_builds_one_im2col_sized_buffer_and_param_grads_none() -> None:
    # A 5x5 kernel makes the im2col matrix 25 times the input, so one such buffer dominates.
    n, c, o, hw, k = 4, 8, 8, 16, 5
    layer = L.conv2d(o, k, padding=2)
    _, params = layer.init(fdl.random.key(0), (None, c, hw, hw))
    x = fdl.random.normal(fdl.random.key(1), (n, c, hw, hw))
    im2col_bytes = n * c * k * k * hw * hw * 4
    forward_peak = _traced_peak(layer.forward, params, x)
    y, cache = layer.forward(params, x)
    dy = np.ones_like(y)
    backward_peak = _traced_peak(layer.backward, params, cache, dy)
    param_grads_peak = _traced_peak(layer.param_grads, params, cache, dy)
    # The measurement sees the forward's im2col matrix ...
    assert forward_peak >= im2col_bytes
    # ... dw reuses it from the cache, so the backward builds exactly one more (dx's columns) ...
    assert im2col_bytes <= backward_peak < 1.5 * im2col_bytes, (backward_peak, im2col_bytes)
    # ... and param_grads, which skips dx, none (input- and output-sized work only).
    assert param_grads_peak < 0.5 * im2col_bytes, (param_grads_peak, im2col_bytes)
