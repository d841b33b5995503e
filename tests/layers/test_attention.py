"""Multi-head attention and scaled dot-product attention: finite differences, masks, causality, errors.

PyTorch agreement is in ``test_attention_torch.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DomainError, DTypeError, LayerError, ShapeError
from functional_dl.layers._sdpa import attention_backward, attention_forward, masked_softmax
from functional_dl.testing import check_gradients
from tests.layers.inputs import assert_causal, moved_params
from tests.layers.multi_io import backward_flow, forward_flow, init_flow


class AttentionConfig(NamedTuple):
    """One attention configuration: sizes, masks and a seed."""

    batch: int
    time: int
    heads: int
    head_size: int
    causal: bool
    lengths: tuple[int, ...] | None  # valid keys per sample (the rest padded), or no padding mask
    seed: int

    @property
    def d_model(self) -> int:
        return self.heads * self.head_size


@st.composite
def attention_configs(draw: st.DrawFn, max_time: int = 4) -> AttentionConfig:
    """Batch and time from 1, up to three heads of up to three features, either mask or both."""
    batch = draw(st.integers(1, 3))
    time = draw(st.integers(1, max_time))
    lengths = draw(st.none() | st.tuples(*[st.integers(1, time)] * batch))
    return AttentionConfig(
        batch,
        time,
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.booleans()),
        lengths,
        draw(st.integers(0, 2**16)),
    )


def _padded_after(lengths: tuple[int, ...] | None, steps: int) -> np.ndarray | None:
    """``(batch, steps)``, True at the steps after each sample's length (PyTorch's convention), or None."""
    if lengths is None:
        return None
    return np.arange(steps)[None, :] >= np.array(lengths)[:, None]


def padding_mask(cfg: AttentionConfig) -> np.ndarray | None:
    """``(batch, time)``, True at padded keys, or None."""
    return _padded_after(cfg.lengths, cfg.time)


def build(cfg: AttentionConfig, dtype: Any = np.float64) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray]:
    """The layer, params with random (nonzero) biases, and an input ``(batch, time, d_model)``."""
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, causal=cfg.causal, dtype=dtype)
    params, rng = moved_params(layer, (None, cfg.time, cfg.d_model), cfg.seed, 0.1, dtype)
    x = rng.standard_normal((cfg.batch, cfg.time, cfg.d_model)).astype(dtype)
    return layer, params, x


@given(cfg=attention_configs())
def test_finite_differences_every_param_and_input(cfg: AttentionConfig) -> None:
    layer, params, x = build(cfg)
    assert check_gradients(layer, params, (x, padding_mask(cfg))).passed


@given(cfg=attention_configs())
def test_masked_keys_get_exactly_zero_weight_and_gradient(cfg: AttentionConfig) -> None:
    rng = np.random.default_rng(cfg.seed)
    shape = (cfg.batch, cfg.heads, cfg.time, cfg.head_size)
    q, k, v, dout = (rng.standard_normal(shape) for _ in range(4))
    allowed = np.less(rng.random((cfg.batch, 1, cfg.time, cfg.time)), 0.6)
    allowed[..., 0] = True  # every query sees a key
    _, p = attention_forward(q, k, v, allowed)
    assert (np.where(allowed, 0, p) == 0).all()
    _, dk, dv = attention_backward(q, k, v, p, dout)
    unseen = ~np.any(allowed, axis=2, keepdims=True).swapaxes(2, 3)  # (b, 1, s, 1): keys no query sees
    assert (np.broadcast_to(unseen, dk.shape) <= (dk == 0)).all()
    assert (np.broadcast_to(unseen, dv.shape) <= (dv == 0)).all()


@given(cfg=attention_configs())
def test_padded_positions_get_zero_gradient_when_their_outputs_are_unused(cfg: AttentionConfig) -> None:
    mask = padding_mask(cfg)
    if mask is None:
        mask = np.zeros((cfg.batch, cfg.time), bool)
    layer, params, x = build(cfg)
    y, cache = forward_flow(layer, params, (x, mask))
    dy = np.random.default_rng(cfg.seed).standard_normal(y.shape)
    dy[mask] = 0  # the loss ignores padded positions
    (dx, dmask), _ = layer.backward(params, cache, dy)
    assert dmask is None
    assert (dx[mask] == 0).all()


@given(cfg=attention_configs(max_time=5), data=st.data())
def test_causal_outputs_up_to_t_ignore_later_inputs(cfg: AttentionConfig, data: st.DataObject) -> None:
    cfg = cfg._replace(causal=True)
    layer, params, x = build(cfg)
    t = data.draw(st.integers(0, cfg.time - 1))
    mask = padding_mask(cfg)
    assert_causal(layer, params, x, mask, t, seed=cfg.seed + 1, later_change=mask is None)


def test_without_the_causal_mask_later_inputs_change_earlier_outputs() -> None:
    layer, params, x = build(AttentionConfig(2, 4, 2, 2, False, None, 3))
    later = x.copy()
    later[:, 3] += 1
    assert not np.array_equal(layer.forward(params, x)[0][:, 0], layer.forward(params, later)[0][:, 0])


def test_a_query_that_sees_no_key_outputs_zeros_not_nan() -> None:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 3, 2)) for _ in range(3))
    allowed = np.ones((1, 1, 3, 3), bool)
    allowed[0, 0, 1] = False
    out, p = attention_forward(q, k, v, allowed)
    assert (out[0, 0, 1] == 0).all() and (p[0, 0, 1] == 0).all()
    assert np.isfinite(out).all()


@given(st.integers(1, 3), st.integers(1, 5), st.integers(0, 2**16))
def test_the_masked_softmax_with_nothing_masked_is_the_plain_softmax(rows: int, cols: int, seed: int) -> None:
    scores = 5 * np.random.default_rng(seed).standard_normal((rows, cols))
    plain = masked_softmax(scores, None)
    np.testing.assert_allclose(masked_softmax(scores, np.ones_like(scores, bool)), plain, rtol=1e-15, atol=0)
    np.testing.assert_allclose(plain, np.exp(scores) / np.exp(scores).sum(-1, keepdims=True), rtol=1e-13)


def test_bare_input_gives_a_bare_gradient() -> None:
    layer, params, x = build(AttentionConfig(2, 3, 2, 2, True, None, 0))
    y, cache = layer.forward(params, x)
    dx, _ = layer.backward(params, cache, np.ones_like(y))
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape


def test_float32_in_float32_out() -> None:
    layer, params, x = build(AttentionConfig(2, 3, 2, 2, True, (3, 1), 0), np.float32)
    y, cache = forward_flow(layer, params, (x, padding_mask(AttentionConfig(2, 3, 2, 2, True, (3, 1), 0))))
    (dx, _), grads = layer.backward(params, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize(
    ("make_input", "error", "message"),
    [
        (lambda x: x[..., :3], ShapeError, "expected input of shape (batch, time, 4), got (2, 3, 3)"),
        (lambda x: (x, np.zeros((2, 4), bool)), ShapeError, "key_padding_mask of shape (2, 3), got (2, 4)"),
        (lambda x: (x, np.zeros((2, 3), np.int64)), DTypeError, "boolean key_padding_mask"),
        (lambda x: (x, None, None), ShapeError, "got a tuple of 3"),
        (lambda x: x.astype(np.float32), DTypeError, "expected input of dtype float64"),
    ],
)
def test_bad_input_names_the_layer_path(make_input: Any, error: type[Exception], message: str) -> None:
    layer = L.multi_head_attention(4, 2, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    net = fdl.serial(layer)
    with pytest.raises(error, match=r"^0\.multi_head_attention: ") as info:
        net.forward({f"0.{k}": v for k, v in params.items()}, make_input(np.ones((2, 3, 4))))
    assert message in str(info.value)


def test_init_refuses_the_wrong_feature_size_and_bad_hyperparameters() -> None:
    with pytest.raises(ShapeError, match="multi_head_attention: expected an input shape"):
        L.multi_head_attention(4, 2).init(fdl.random.key(0), (None, 3, 5))
    with pytest.raises(ValueError, match="multiple of heads"):
        L.multi_head_attention(6, 4)
    with pytest.raises(ValueError, match="heads must be a positive int"):
        L.multi_head_attention(6, 0)


# --- cross-attention: separate queries, keys and values --------------------------------------------


class CrossConfig(NamedTuple):
    """Queries of ``time`` steps attending to ``keys`` steps of ``kdim``/``vdim`` features (None: d_model)."""

    batch: int
    time: int
    keys: int
    heads: int
    head_size: int
    kdim: int | None
    vdim: int | None
    causal: bool
    lengths: tuple[int, ...] | None  # valid keys per sample, or no padding mask
    seed: int

    @property
    def d_model(self) -> int:
        return self.heads * self.head_size

    @property
    def key_size(self) -> int:
        return self.kdim or self.d_model

    @property
    def value_size(self) -> int:
        return self.vdim or self.d_model


@st.composite
def cross_configs(draw: st.DrawFn, max_time: int = 4) -> CrossConfig:
    """Key sequences longer, shorter or as long as the queries; packed or separate projections."""
    batch = draw(st.integers(1, 3))
    keys = draw(st.integers(1, max_time))
    lengths = draw(st.none() | st.tuples(*[st.integers(1, keys)] * batch))
    separate = draw(st.booleans())
    return CrossConfig(
        batch,
        draw(st.integers(1, max_time)),
        keys,
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)) if separate else None,
        draw(st.integers(1, 4)) if separate else None,
        draw(st.booleans()),
        lengths,
        draw(st.integers(0, 2**16)),
    )


def key_padding(cfg: CrossConfig) -> np.ndarray | None:
    """``(batch, keys)``, True at padded keys, or None."""
    return _padded_after(cfg.lengths, cfg.keys)


def build_cross(
    cfg: CrossConfig, dtype: Any = np.float64, dropout: float = 0.0
) -> tuple[fdl.Layer[Any], fdl.Params, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The layer, params with random (nonzero) biases, and ``(query, key, value)``."""
    layer = L.multi_head_attention(
        cfg.d_model,
        cfg.heads,
        causal=cfg.causal,
        cross=True,
        kdim=cfg.kdim,
        vdim=cfg.vdim,
        dropout=dropout,
        dtype=dtype,
    )
    shapes = ((None, cfg.time, cfg.d_model), (None, cfg.keys, cfg.key_size), (None, cfg.keys, cfg.value_size))
    params, rng = moved_params(layer, shapes, cfg.seed, 0.1, dtype)
    q = rng.standard_normal((cfg.batch, cfg.time, cfg.d_model)).astype(dtype)
    k = rng.standard_normal((cfg.batch, cfg.keys, cfg.key_size)).astype(dtype)
    v = rng.standard_normal((cfg.batch, cfg.keys, cfg.value_size)).astype(dtype)
    return layer, params, (q, k, v)


@given(cfg=cross_configs())
def test_cross_finite_differences_every_param_and_input(cfg: CrossConfig) -> None:
    layer, params, (q, k, v) = build_cross(cfg)
    report = check_gradients(layer, params, (q, k, v, key_padding(cfg)))
    assert report.passed
    assert report.checked == q.size + k.size + v.size + fdl.params.num_params(params)


@given(cfg=cross_configs())
def test_cross_parameter_keys_are_torchs(cfg: CrossConfig) -> None:
    _, params, _ = build_cross(cfg)
    packed = cfg.kdim is None
    projections = {"in_proj_weight"} if packed else {"q_proj_weight", "k_proj_weight", "v_proj_weight"}
    assert set(params) == projections | {"in_proj_bias", "out_proj.weight", "out_proj.bias"}
    if not packed:
        assert params["k_proj_weight"].shape == (cfg.d_model, cfg.key_size)
        assert params["v_proj_weight"].shape == (cfg.d_model, cfg.value_size)


@given(cfg=cross_configs())
def test_cross_padded_keys_get_exactly_zero_gradient(cfg: CrossConfig) -> None:
    mask = key_padding(cfg)
    if mask is None:
        mask = np.zeros((cfg.batch, cfg.keys), bool)
        mask[:, cfg.keys - 1 :] = cfg.keys > 1  # pad the last key where one stays valid
    layer, params, (q, k, v) = build_cross(cfg._replace(causal=False))
    y, cache = forward_flow(layer, params, L.AttentionInput(q, k, v, mask))
    dy = np.random.default_rng(cfg.seed).standard_normal(y.shape)
    (dq, dk, dv, dmask), _ = backward_flow(layer, params, cache, dy)
    assert dmask is None and dq.shape == q.shape
    assert (dk[mask] == 0).all() and (dv[mask] == 0).all()
    changed = v.copy()
    changed[mask] += 5.0  # a padded key's value does not reach the output at all
    assert np.array_equal(forward_flow(layer, params, (q, k, changed, mask))[0], y)


def test_cross_attention_over_the_same_sequence_is_self_attention() -> None:
    """Packed cross-attention fed ``(x, x, x)`` computes self-attention's numbers (to rounding)."""
    self_attn = L.multi_head_attention(6, 3, causal=True, dtype=np.float64)
    cross = L.multi_head_attention(6, 3, causal=True, cross=True, dtype=np.float64)
    _, params = self_attn.init(fdl.random.key(0), (None, 4, 6))
    x = np.random.default_rng(1).standard_normal((2, 4, 6))
    y_self, cache_self = self_attn.forward(params, x)
    y_cross, cache_cross = forward_flow(cross, params, (x, x, x))
    np.testing.assert_allclose(y_cross, y_self, rtol=1e-13, atol=1e-14)
    dy = np.ones_like(y_self)
    dx, g_self = self_attn.backward(params, cache_self, dy)
    (dq, dk, dv), g_cross = backward_flow(cross, params, cache_cross, dy)
    np.testing.assert_allclose(dq + dk + dv, dx, rtol=1e-12, atol=1e-13)
    for name in params:
        np.testing.assert_allclose(g_cross[name], g_self[name], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    ("make_input", "error", "message"),
    [
        (lambda q, kv: q, ShapeError, "expects the tuple (query, key, value)"),
        (lambda q, kv: (q, kv), ShapeError, "got a tuple of 2"),
        (
            lambda q, kv: (q, kv[..., :2], kv),
            ShapeError,
            "expected key of shape (batch, time, 3), got (2, 5, 2)",
        ),
        (lambda q, kv: (q[..., :3], kv, kv), ShapeError, "expected query of shape (batch, time, 4)"),
        (lambda q, kv: (q, kv, kv[:, :4]), ShapeError, "key and value of the same (batch, time)"),
        (lambda q, kv: (q, kv[:1], kv[:1]), ShapeError, "the query's batch"),
        (lambda q, kv: (q, kv, kv, np.zeros((2, 3), bool)), ShapeError, "key_padding_mask of shape (2, 5)"),
        (lambda q, kv: (q, kv.astype(np.float32), kv), DTypeError, "expected key of dtype float64"),
        (lambda q, kv: (q, kv, kv, np.zeros((2, 5))), DTypeError, "boolean key_padding_mask"),
    ],
)
def test_cross_bad_input_names_the_layer_path(make_input: Any, error: type[Exception], message: str) -> None:
    layer = L.multi_head_attention(4, 2, cross=True, kdim=3, vdim=3, dtype=np.float64)
    _, params = init_flow(layer, fdl.random.key(0), ((None, 4, 4), (None, 5, 3), (None, 5, 3)))
    net = fdl.serial(layer)
    with pytest.raises(error, match=r"^0\.multi_head_attention: ") as info:
        forward_flow(
            net, {f"0.{k}": v for k, v in params.items()}, make_input(np.ones((2, 4, 4)), np.ones((2, 5, 3)))
        )
    assert message in str(info.value)


def test_cross_init_refuses_wrong_shapes_and_hyperparameters() -> None:
    layer = L.multi_head_attention(4, 2, cross=True, kdim=3)
    with pytest.raises(ShapeError, match="expected the input shapes"):
        layer.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(ShapeError, match=r"expected a key shape \(batch, time, 3\)"):
        init_flow(layer, fdl.random.key(0), ((None, 3, 4), (None, 2, 4), (None, 2, 4)))
    with pytest.raises(ValueError, match="kdim and vdim are for cross-attention"):
        L.multi_head_attention(4, 2, kdim=3)
    with pytest.raises(ValueError, match="vdim must be a positive int"):
        L.multi_head_attention(4, 2, cross=True, vdim=0)


# --- dropout on the attention weights ---------------------------------------------------------------


def _train(seed: int) -> fdl.Context:
    return fdl.Context(train=True, key=fdl.random.key(seed))


@given(cfg=attention_configs(), rate=st.sampled_from([0.2, 0.5, 0.9]))
def test_dropout_finite_differences_with_a_fixed_key(cfg: AttentionConfig, rate: float) -> None:
    """The mask drawn in forward is the one backward applies (the same key gives the same mask)."""
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, causal=cfg.causal, dropout=rate, dtype=np.float64)
    _, params, x = build(cfg)
    assert check_gradients(layer, params, (x, padding_mask(cfg)), ctx=_train(cfg.seed)).passed


@given(cfg=cross_configs())
def test_cross_dropout_finite_differences_with_a_fixed_key(cfg: CrossConfig) -> None:
    layer, params, (q, k, v) = build_cross(cfg, dropout=0.5)
    assert check_gradients(layer, params, (q, k, v, key_padding(cfg)), ctx=_train(cfg.seed)).passed


def test_dropout_drops_weights_at_the_rate_and_rescales_the_rest() -> None:
    cfg = AttentionConfig(8, 16, 2, 2, False, None, 0)
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, dropout=0.3, dtype=np.float64)
    _, params, x = build(cfg)
    _, cache = layer.forward(params, x, _train(1))
    drop = cache.drop
    assert drop is not None and drop.shape == cache.p.shape == (8, 2, 16, 16)
    assert set(np.unique(drop).tolist()) == {0.0, 1 / 0.7}
    assert abs(float(np.mean(drop == 0)) - 0.3) < 0.02  # 4096 draws: 5 standard deviations is 0.036
    y, _ = layer.forward(params, x, _train(1))
    expected = L.multi_head_attention(cfg.d_model, cfg.heads, dtype=np.float64).forward(params, x)[0]
    assert not np.allclose(y, expected)


def test_dropout_is_off_in_evaluation_and_keyed_in_training() -> None:
    cfg = AttentionConfig(2, 5, 2, 2, True, None, 3)
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, causal=True, dropout=0.5, dtype=np.float64)
    plain = L.multi_head_attention(cfg.d_model, cfg.heads, causal=True, dtype=np.float64)
    _, params, x = build(cfg)
    assert layer.reads_context and not plain.reads_context
    assert layer.forward(params, x)[0].tobytes() == plain.forward(params, x)[0].tobytes()
    assert layer.forward(params, x, fdl.Context(key=fdl.random.key(0)))[0].tobytes() == (
        plain.forward(params, x)[0].tobytes()
    )
    a, b, c = (layer.forward(params, x, _train(s))[0] for s in (7, 7, 8))
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c)
    zero = L.multi_head_attention(cfg.d_model, cfg.heads, causal=True, dropout=0.0, dtype=np.float64)
    assert zero.forward(params, x, _train(7))[0].tobytes() == plain.forward(params, x)[0].tobytes()


@given(cfg=attention_configs(max_time=5))
def test_dropout_keeps_masked_keys_at_exactly_zero_gradient(cfg: AttentionConfig) -> None:
    mask = padding_mask(cfg)
    if mask is None:
        mask = np.zeros((cfg.batch, cfg.time), bool)
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, causal=cfg.causal, dropout=0.5, dtype=np.float64)
    _, params, x = build(cfg)
    y, cache = forward_flow(layer, params, (x, mask), _train(cfg.seed))
    dy = np.random.default_rng(cfg.seed).standard_normal(y.shape)
    dy[mask] = 0
    (dx, _), _ = backward_flow(layer, params, cache, dy)
    assert (dx[mask] == 0).all()
    assert (cache.p[np.broadcast_to(mask[:, None, None, :], cache.p.shape)] == 0).all()


def test_dropout_in_training_needs_a_key_and_a_valid_rate() -> None:
    layer = L.multi_head_attention(4, 2, dropout=0.1, dtype=np.float64)
    _, params = layer.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(LayerError, match=r"^multi_head_attention: training mode needs a random key"):
        layer.forward(params, np.ones((1, 3, 4)), fdl.Context(train=True))
    for rate in (-0.1, 1.5):
        with pytest.raises(DomainError, match=r"dropout \(the drop probability\) must be in"):
            L.multi_head_attention(4, 2, dropout=rate)
    with pytest.raises(DomainError, match=r"^multi_head_attention: dropout must be a real number, got True"):
        L.multi_head_attention(4, 2, dropout=True)
