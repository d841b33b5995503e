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
from functional_dl.errors import DTypeError, ShapeError
from functional_dl.layers._sdpa import attention_backward, attention_forward, masked_softmax
from functional_dl.testing import check_gradients
from tests.layers.multi_io import forward_flow


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


def padding_mask(cfg: AttentionConfig) -> np.ndarray | None:
    """``(batch, time)``, True at padded keys (PyTorch's convention), or None."""
    if cfg.lengths is None:
        return None
    return np.arange(cfg.time)[None, :] >= np.array(cfg.lengths)[:, None]


def build(cfg: AttentionConfig, dtype: Any = np.float64) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray]:
    """The layer, params with random (nonzero) biases, and an input ``(batch, time, d_model)``."""
    layer = L.multi_head_attention(cfg.d_model, cfg.heads, causal=cfg.causal, dtype=dtype)
    _, params = layer.init(fdl.random.key(cfg.seed), (None, cfg.time, cfg.d_model))
    rng = np.random.default_rng(cfg.seed)
    params = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}
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
    later = x.copy()
    later[:, t + 1 :] += np.random.default_rng(cfg.seed + 1).standard_normal(later[:, t + 1 :].shape)
    y, _ = forward_flow(layer, params, (x, padding_mask(cfg)))
    y2, _ = forward_flow(layer, params, (later, padding_mask(cfg)))
    assert np.array_equal(y[:, : t + 1], y2[:, : t + 1])
    if t + 1 < cfg.time:
        assert not np.array_equal(y[:, t + 1 :], y2[:, t + 1 :])


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
