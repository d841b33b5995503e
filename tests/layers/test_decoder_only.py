"""decoder_only_transformer: logits of every position, causality, the tied weight, gradients, errors."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DomainError, ShapeError
from functional_dl.testing import check_gradients


class LMConfig(NamedTuple):
    vocab: int
    heads: int
    head_size: int
    layers: int
    batch: int
    time: int
    positional: str
    seed: int

    @property
    def d_model(self) -> int:
        return self.heads * self.head_size


@st.composite
def lm_configs(draw: st.DrawFn) -> LMConfig:
    return LMConfig(
        draw(st.integers(2, 5)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.sampled_from(["learned", "sinusoidal"])),
        draw(st.integers(0, 2**16)),
    )


def build(
    cfg: LMConfig, *, tie: bool = True, dropout: float = 0.0
) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray]:
    """The model in float64, params moved off their initial values, and ids ``(batch, time)``."""
    lm = L.decoder_only_transformer(
        cfg.vocab,
        cfg.d_model,
        cfg.heads,
        cfg.layers,
        max_len=6,
        dim_feedforward=3,
        dropout=dropout,
        positional=cfg.positional,  # type: ignore[arg-type]  # drawn from the two names
        tie_weights=tie,
        dtype=np.float64,
    )
    _, params = lm.init(fdl.random.key(cfg.seed), (None, cfg.time))
    rng = np.random.default_rng(cfg.seed)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    ids = rng.integers(0, cfg.vocab, (cfg.batch, cfg.time))
    return lm, params, ids


@given(cfg=lm_configs())
def test_finite_differences_of_every_parameter_with_the_tied_weight(cfg: LMConfig) -> None:
    lm, params, ids = build(cfg)
    report = check_gradients(lm, params, ids)  # the ids get None as their gradient
    assert report.passed
    assert report.checked == fdl.params.num_params(params)


@given(cfg=lm_configs(), rate=st.sampled_from([0.2, 0.6]))
def test_dropout_finite_differences_with_a_fixed_key(cfg: LMConfig, rate: float) -> None:
    lm, params, ids = build(cfg, dropout=rate)
    assert check_gradients(lm, params, ids, ctx=fdl.Context(train=True, key=fdl.random.key(cfg.seed))).passed


@given(cfg=lm_configs())
def test_the_tied_weight_is_stored_once_and_gets_the_sum_of_both_gradients(cfg: LMConfig) -> None:
    tied, params, ids = build(cfg)
    untied, untied_params, _ = build(cfg, tie=False)
    assert set(untied_params) - set(params) == {"head.w"}
    assert params["embed.weight"].shape == untied_params["head.w"].shape == (cfg.vocab, cfg.d_model)
    copied = {**params, "head.w": params["embed.weight"].copy()}  # untied, the weight copied
    logits, cache = tied.forward(params, ids)
    logits_untied, cache_untied = untied.forward(copied, ids)
    assert logits.shape == (cfg.batch, cfg.time, cfg.vocab)
    assert logits.tobytes() == logits_untied.tobytes()
    dy = np.random.default_rng(cfg.seed + 1).standard_normal(logits.shape)
    _, grads = tied.backward(params, cache, dy)
    _, separate = untied.backward(copied, cache_untied, dy)
    assert grads.keys() == params.keys()
    assert np.array_equal(grads["embed.weight"], separate["embed.weight"] + separate["head.w"])
    for k in params:
        if k != "embed.weight":
            assert np.array_equal(grads[k], separate[k]), k


@given(cfg=lm_configs(), data=st.data())
def test_logits_up_to_t_ignore_later_tokens(cfg: LMConfig, data: st.DataObject) -> None:
    lm, params, ids = build(cfg)
    t = data.draw(st.integers(0, cfg.time - 1))
    later = ids.copy()
    later[:, t + 1 :] = (later[:, t + 1 :] + 1) % cfg.vocab
    y, _ = lm.forward(params, ids)
    y2, _ = lm.forward(params, later)
    assert np.array_equal(y[:, : t + 1], y2[:, : t + 1])
    if t + 1 < cfg.time:
        assert not np.array_equal(y[:, t + 1 :], y2[:, t + 1 :])


def test_parameter_keys_and_parts() -> None:
    lm = L.decoder_only_transformer(11, 8, 2, 2, max_len=5)
    _, params = lm.init(fdl.random.key(0), (None, 5))
    assert list(params)[:3] == ["embed.weight", "pos.weight", "blocks.0.self_attn.in_proj_weight"]
    assert "blocks.1.linear2.w" in params and "norm.scale" in params and "head.w" not in params
    assert params["blocks.0.linear1.w"].shape == (32, 8)  # 4 * d_model by default
    text = str(fdl.inspect.summary(lm, (None, 5)))
    for part in ("embed", "pos", "blocks.1.self_attn", "norm", "head", "tie"):
        assert part in text
    assert abs(float(np.std(params["embed.weight"])) - 0.02) < 0.01
    sinusoidal = L.decoder_only_transformer(11, 8, 2, 1, positional="sinusoidal", tie_weights=False)
    _, params = sinusoidal.init(fdl.random.key(0), (None, 50))
    assert "pos.weight" not in params and params["head.w"].shape == (11, 8)


def test_bad_input_and_hyperparameters_are_refused_clearly() -> None:
    lm, params, ids = build(LMConfig(5, 2, 2, 1, 2, 3, "learned", 0))
    with pytest.raises(DomainError, match=r"^embed\.embedding: ids must lie in \[0, 4\]"):
        lm.forward(params, ids + 5)
    with pytest.raises(
        ShapeError, match=r"^pos\.learned_positional_encoding: a sequence of 7 steps is longer"
    ):
        lm.forward(params, np.zeros((1, 7), np.int64))
    with pytest.raises(ValueError, match="positional='learned' needs max_len"):
        L.decoder_only_transformer(5, 4, 2, 1)
    with pytest.raises(ValueError, match="positional must be 'learned' or 'sinusoidal'"):
        L.decoder_only_transformer(5, 4, 2, 1, positional="rotary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        L.decoder_only_transformer(5, 4, 2, 0, max_len=4)


def test_a_few_steps_of_adam_lower_the_loss_on_a_repeating_sequence() -> None:
    lm = L.decoder_only_transformer(4, 8, 2, 1, max_len=8, dropout=0.0, dtype=np.float64)
    _, params = lm.init(fdl.random.key(0), (None, 8))
    ids: np.ndarray = np.tile(np.arange(4), (2, 3))[:, :9]  # 0 1 2 3 0 1 2 3 0
    x, target = ids[:, :-1], ids[:, 1:]
    opt = fdl.optim.adam(1e-2)
    state = opt.init(params)
    losses = []
    for _ in range(30):
        logits, cache = lm.forward(params, x)
        value, dlogits = fdl.losses.softmax_cross_entropy(logits.reshape(-1, 4), target.reshape(-1))
        losses.append(float(value))
        _, grads = lm.backward(params, cache, dlogits.reshape(logits.shape))
        state, params = opt.update(state, grads)
    assert losses[-1] < 0.5 * losses[0]
