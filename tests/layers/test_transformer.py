"""transformer_encoder_layer: finite differences, masks, causality, dropout, stacking, inspection, errors.

PyTorch agreement is in ``test_transformer_torch.py``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DTypeError, ShapeError
from functional_dl.testing import check_gradients
from tests.layers.inputs import assert_causal, moved_params
from tests.layers.multi_io import backward_flow, forward_flow, init_flow


class EncoderConfig(NamedTuple):
    """One encoder layer configuration, a batch and a seed."""

    batch: int
    time: int
    heads: int
    head_size: int
    feedforward: int
    norm_first: bool
    activation: str
    causal: bool
    lengths: tuple[int, ...] | None  # valid positions per sample (the rest padded), or no mask
    seed: int

    @property
    def d_model(self) -> int:
        return self.heads * self.head_size


@st.composite
def encoder_configs(draw: st.DrawFn, max_time: int = 4, min_d_model: int = 1) -> EncoderConfig:
    """Batch and time from 1, one or two heads of up to three features, either mask or both."""
    batch = draw(st.integers(1, 3))
    time = draw(st.integers(1, max_time))
    heads = draw(st.integers(1, 2))
    return EncoderConfig(
        batch,
        time,
        heads,
        draw(st.integers(-(-min_d_model // heads), 3)),
        draw(st.integers(1, 5)),
        draw(st.booleans()),
        draw(st.sampled_from(["relu", "gelu"])),
        draw(st.booleans()),
        draw(st.none() | st.tuples(*[st.integers(1, time)] * batch)),
        draw(st.integers(0, 2**16)),
    )


def padding(cfg: EncoderConfig) -> np.ndarray | None:
    """``(batch, time)``, True at padded positions, or None."""
    if cfg.lengths is None:
        return None
    return np.arange(cfg.time)[None, :] >= np.array(cfg.lengths)[:, None]


def make(cfg: EncoderConfig, dropout: float = 0.0, dtype: Any = np.float64) -> fdl.Layer[Any]:
    return L.transformer_encoder_layer(
        cfg.d_model,
        cfg.heads,
        cfg.feedforward,
        dropout,
        activation=cfg.activation,  # type: ignore[arg-type]  # drawn from the two names
        norm_first=cfg.norm_first,
        causal=cfg.causal,
        dtype=dtype,
    )


def build(
    cfg: EncoderConfig, dropout: float = 0.0, dtype: Any = np.float64
) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray]:
    """The layer, params moved off their initial values (norm scales off 1), an input."""
    layer = make(cfg, dropout, dtype)
    params, rng = moved_params(layer, (None, cfg.time, cfg.d_model), cfg.seed, 0.2, dtype)
    x = rng.standard_normal((cfg.batch, cfg.time, cfg.d_model)).astype(dtype)
    return layer, params, x


@given(cfg=encoder_configs())
def test_finite_differences_every_param_and_input(cfg: EncoderConfig) -> None:
    cfg = cfg._replace(activation="gelu")  # smooth: finite differences never straddle relu's kink
    layer, params, x = build(cfg)
    report = check_gradients(layer, params, (x, padding(cfg)))
    assert report.passed
    assert report.checked == x.size + fdl.params.num_params(params)


@given(cfg=encoder_configs(), rate=st.sampled_from([0.3, 0.7]))
def test_dropout_finite_differences_with_a_fixed_key(cfg: EncoderConfig, rate: float) -> None:
    """Every dropout (the attention weights' and the three others) applies its forward mask in backward."""
    cfg = cfg._replace(activation="gelu")
    layer, params, x = build(cfg, dropout=rate)
    ctx = fdl.Context(train=True, key=fdl.random.key(cfg.seed))
    assert check_gradients(layer, params, (x, padding(cfg)), ctx=ctx).passed


@given(cfg=encoder_configs(max_time=5), data=st.data())
def test_causal_outputs_up_to_t_ignore_later_inputs(cfg: EncoderConfig, data: st.DataObject) -> None:
    cfg = cfg._replace(causal=True)
    layer, params, x = build(cfg)
    t = data.draw(st.integers(0, cfg.time - 1))
    mask = padding(cfg)
    assert_causal(layer, params, x, mask, t, seed=cfg.seed + 1, later_change=mask is None and cfg.d_model > 2)


@given(cfg=encoder_configs())
def test_padded_positions_get_exactly_zero_gradient_and_do_not_change_the_others(cfg: EncoderConfig) -> None:
    mask = padding(cfg)
    if mask is None:
        mask = np.zeros((cfg.batch, cfg.time), bool)
    layer, params, x = build(cfg)
    (y, mask_out), cache = forward_flow(layer, params, (x, mask))
    assert mask_out is mask
    dy = np.random.default_rng(cfg.seed).standard_normal(y.shape)
    dy[mask] = 0  # the loss ignores padded positions
    (dx, dmask), _ = backward_flow(layer, params, cache, (dy, None))
    assert dmask is None
    assert (dx[mask] == 0).all()
    changed = x.copy()
    changed[mask] += 3.0
    (y2, _), _ = forward_flow(layer, params, (changed, mask))
    assert np.array_equal(y2[~mask], y[~mask])


def test_the_mask_flows_through_a_stack_and_a_bare_input_stays_bare() -> None:
    cfg = EncoderConfig(2, 4, 2, 2, 6, True, "gelu", False, (4, 2), 0)
    stack = fdl.serial(make(cfg), make(cfg._replace(norm_first=False)))
    _, params = stack.init(fdl.random.key(0), (None, 4, 4))
    x = np.random.default_rng(0).standard_normal((2, 4, 4))
    mask = padding(cfg)
    (y, m), _ = forward_flow(stack, params, (x, mask))
    assert m is mask and y.shape == x.shape
    assert check_gradients(stack, params, (x, mask)).passed
    y_bare, cache_bare = stack.forward(params, x)
    dx, _ = stack.backward(params, cache_bare, np.ones_like(y_bare))
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape
    (y_none, m_none), _ = forward_flow(stack, params, (x, None))
    assert m_none is None and np.array_equal(y_none, y_bare)


def test_parameter_keys_follow_torchs_module_names() -> None:
    layer = L.transformer_encoder_layer(8, 2, 16)
    _, params = layer.init(fdl.random.key(0), (None, 3, 8))
    assert list(params) == [
        "self_attn.in_proj_weight",
        "self_attn.in_proj_bias",
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "linear1.w",
        "linear1.b",
        "linear2.w",
        "linear2.b",
        "norm1.scale",
        "norm1.bias",
        "norm2.scale",
        "norm2.bias",
    ]
    assert params["linear1.w"].shape == (16, 8) and params["linear2.w"].shape == (8, 16)
    assert [c.segment for c in layer.children] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2", "activation",
    ]  # fmt: skip


def test_inspection_shows_every_part_and_records_it() -> None:
    layer = L.transformer_encoder_layer(4, 2, 6, norm_first=True, dtype=np.float64)
    text = str(fdl.inspect.summary(layer, (None, 3, 4)))
    for part in ("self_attn", "linear1", "linear2", "norm1", "norm2", "dropout1", "activation"):
        assert part in text
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    acts = fdl.inspect.activations(layer, params, x)
    assert acts["linear1"].shape == (2, 3, 6)
    y, _ = layer.forward(params, x)
    rebuilt = layer.rebuild(tuple(c.layer for c in layer.children))  # type: ignore[misc]
    assert np.array_equal(rebuilt.forward(params, x)[0], y)


def test_relu_and_gelu_and_a_layer_as_the_activation() -> None:
    cfg = EncoderConfig(2, 3, 2, 2, 5, False, "relu", False, None, 4)
    _, params, x = build(cfg)
    outputs = [
        L.transformer_encoder_layer(4, 2, 5, activation=act, dtype=np.float64).forward(params, x)[0]
        for act in ("relu", "gelu", L.relu(), L.tanh())
    ]
    assert np.array_equal(outputs[0], outputs[2])
    assert not np.allclose(outputs[0], outputs[1]) and not np.allclose(outputs[0], outputs[3])
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a Layer"):
        L.transformer_encoder_layer(4, 2, activation="swish")  # type: ignore[arg-type]


def test_dropout_is_off_in_evaluation_and_needs_a_key_in_training() -> None:
    cfg = EncoderConfig(2, 3, 2, 2, 5, False, "gelu", True, None, 5)
    layer, params, x = build(cfg, dropout=0.5)
    plain = make(cfg, dropout=0.0)
    assert layer.reads_context
    assert layer.forward(params, x)[0].tobytes() == plain.forward(params, x)[0].tobytes()
    train = fdl.Context(train=True, key=fdl.random.key(1))
    y_train = layer.forward(params, x, train)[0]
    assert y_train.tobytes() == layer.forward(params, x, train)[0].tobytes()  # the key fixes the masks
    assert not np.allclose(y_train, plain.forward(params, x, train)[0])
    with pytest.raises(fdl.errors.LayerError, match=r"^self_attn\.multi_head_attention: training mode needs"):
        layer.forward(params, x, fdl.Context(train=True))


def test_float32_in_float32_out() -> None:
    cfg = EncoderConfig(2, 3, 2, 2, 5, True, "gelu", True, (3, 1), 0)
    layer, params, x = build(cfg, dtype=np.float32)
    (y, _), cache = forward_flow(layer, params, (x, padding(cfg)))
    (dx, _), grads = backward_flow(layer, params, cache, (np.ones_like(y), None))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


_ATTN, _LAYER = "0.self_attn.multi_head_attention", "0.transformer_encoder_layer"


@pytest.mark.parametrize(
    ("make_input", "error", "path", "message"),
    [
        (lambda x: x[..., :3], ShapeError, _ATTN, "expected input of shape (batch, time, 4)"),
        (lambda x: (x, np.zeros((2, 4), bool)), ShapeError, _ATTN, "key_padding_mask of shape (2, 3)"),
        (lambda x: (x, np.zeros((2, 3))), DTypeError, _ATTN, "boolean key_padding_mask"),
        (lambda x: (x, None, None), ShapeError, _LAYER, "got a tuple of 3"),
        (lambda x: x[0], ShapeError, _LAYER, "(batch, time, d_model), got (3, 4)"),
        (lambda x: [x], DTypeError, _LAYER, "got list"),
        (lambda x: x.astype(np.int64), DTypeError, _LAYER, "floating-point input"),
        (lambda x: x.astype(np.float32), DTypeError, _ATTN, "dtype float64"),
    ],
)
def test_bad_input_names_the_layer_path(
    make_input: Any, error: type[Exception], path: str, message: str
) -> None:
    layer = L.transformer_encoder_layer(4, 2, 6, norm_first=False, dtype=np.float64)
    net = fdl.serial(layer)
    _, params = net.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(error, match=rf"^{re.escape(path)}: ") as info:
        forward_flow(net, params, make_input(np.ones((2, 3, 4))))
    assert message in str(info.value)


def test_init_refuses_bad_shapes_and_hyperparameters() -> None:
    with pytest.raises(ShapeError, match=r"^self_attn\.multi_head_attention: expected an input shape"):
        L.transformer_encoder_layer(4, 2).init(fdl.random.key(0), (None, 3, 5))
    with pytest.raises(ShapeError, match=r"^transformer_encoder_layer: expected an input shape"):
        L.transformer_encoder_layer(4, 2).init(fdl.random.key(0), (None, 4))
    with pytest.raises(ValueError, match="dim_feedforward must be a positive int"):
        L.transformer_encoder_layer(4, 2, 0)
    with pytest.raises(ValueError, match="multiple of heads"):
        L.transformer_encoder_layer(5, 2)
    shapes, _ = init_flow(L.transformer_encoder_layer(4, 2), fdl.random.key(0), ((None, 3, 4), (None, 3)))
    assert shapes == ((None, 3, 4), (None, 3))


def test_the_gradient_of_a_tuple_output_is_the_pair_dy_none() -> None:
    """``(y, mask)`` out, ``(dy, None)`` back: an array, or a tuple of another length, is refused."""
    layer = L.transformer_encoder_layer(4, 2, 6, 0.0)
    _, params = init_flow(layer, fdl.random.key(0), ((None, 3, 4), (None, 3)))
    x, mask = np.ones((2, 3, 4), np.float32), np.zeros((2, 3), bool)
    (y, _), cache = forward_flow(layer, params, (x, mask))
    for dy in (y, (y,), (y, None, None)):
        with pytest.raises(ShapeError, match=r"^transformer_encoder_layer: expected dy as \(dy, None\)"):
            backward_flow(layer, params, cache, dy)
    dx, _ = backward_flow(layer, params, cache, (np.ones_like(y), None))
    assert dx[0].shape == x.shape and dx[1] is None
