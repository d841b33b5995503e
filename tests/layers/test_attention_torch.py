"""multi_head_attention against ``torch.nn.MultiheadAttention(batch_first=True)`` in float64.

Weights are copied by key (the state_dict maps unchanged); the key-padding mask and the causal mask
are given to PyTorch as boolean masks. Self- and cross-attention (keys of another length, packed or
separate projections) are compared with the module; dropout with ``p = 0`` in training mode and
``p > 0`` in evaluation with the module too, and dropout in training (whose random mask PyTorch
cannot share) with the same maths written in torch ops and given our mask. The output, the input
gradient and every parameter gradient must agree to 1e-10 relative to the largest entry of PyTorch's result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from tests.layers.multi_io import backward_flow, forward_flow
from tests.layers.test_attention import (
    AttentionConfig,
    CrossConfig,
    attention_configs,
    build,
    build_cross,
    cross_configs,
    key_padding,
    padding_mask,
)

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

RTOL = 1e-10


def _rel_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = float(np.max(np.abs(theirs), initial=0.0))
    diff = float(np.max(np.abs(ours - theirs), initial=0.0))
    return diff / scale if scale > 0 else diff


def torch_attention(cfg: AttentionConfig, params: Any, dropout: float = 0.0) -> Any:
    """The PyTorch module holding ``params``, copied by key."""
    module = torch.nn.MultiheadAttention(
        cfg.d_model, cfg.heads, dropout=dropout, batch_first=True, dtype=torch.float64
    )
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})
    return module


def torch_masks(cfg: AttentionConfig) -> dict[str, Any]:
    """PyTorch's keyword masks: True where attention is not allowed."""
    mask = padding_mask(cfg)
    causal = torch.triu(torch.ones(cfg.time, cfg.time, dtype=torch.bool), 1) if cfg.causal else None
    return {"key_padding_mask": None if mask is None else torch.from_numpy(mask), "attn_mask": causal}


@given(cfg=attention_configs(max_time=5))
def test_matches_torch_with_both_masks(cfg: AttentionConfig) -> None:
    layer, params, x = build(cfg)
    y, cache = forward_flow(layer, params, (x, padding_mask(cfg)))
    dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
    (dx, _), grads = layer.backward(params, cache, dy)

    _assert_self_attention_matches(torch_attention(cfg, params), cfg, x, dy, (y, dx, grads))


def _assert_self_attention_matches(
    module: Any, cfg: AttentionConfig, x: np.ndarray, dy: np.ndarray, ours: tuple[Any, Any, Any]
) -> None:
    """``module(x, x, x)`` and its gradients for cotangent ``dy`` agree with ours ``(y, dx, grads)``."""
    y, dx, grads = ours
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, _ = module(xt, xt, xt, need_weights=False, **torch_masks(cfg))
    yt.backward(torch.from_numpy(dy))
    assert _rel_diff(y, yt.detach().numpy()) <= RTOL
    assert xt.grad is not None and _rel_diff(dx, xt.grad.numpy()) <= RTOL
    for name, p in module.named_parameters():
        assert p.grad is not None and _rel_diff(grads[name], p.grad.numpy()) <= RTOL, name
    assert set(grads) == {name for name, _ in module.named_parameters()}


def _torch_cross(cfg: CrossConfig, params: Any, dropout: float = 0.0) -> Any:
    module = torch.nn.MultiheadAttention(
        cfg.d_model,
        cfg.heads,
        dropout=dropout,
        batch_first=True,
        kdim=cfg.kdim,
        vdim=cfg.vdim,
        dtype=torch.float64,
    )
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})
    return module


@given(cfg=cross_configs(max_time=5))
def test_cross_attention_matches_torch(cfg: CrossConfig) -> None:
    """``mha(query, key, value)`` with keys of another length, packed or separate projections, both masks."""
    layer, params, (q, k, v) = build_cross(cfg)
    mask = key_padding(cfg)
    y, cache = forward_flow(layer, params, (q, k, v, mask))
    dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
    (dq, dk, dv, _), grads = backward_flow(layer, params, cache, dy)

    module = _torch_cross(cfg, params)
    qt, kt, vt = (torch.from_numpy(a).requires_grad_(True) for a in (q, k, v))
    causal = torch.triu(torch.ones(cfg.time, cfg.keys, dtype=torch.bool), 1) if cfg.causal else None
    kpm = None if mask is None else torch.from_numpy(mask)
    yt, _ = module(qt, kt, vt, need_weights=False, key_padding_mask=kpm, attn_mask=causal)
    yt.backward(torch.from_numpy(dy))
    assert _rel_diff(y, yt.detach().numpy()) <= RTOL
    # A query that sees one key has weight 1 whatever the scores: dq and the query and key
    # projections' gradients are then zero, and PyTorch's rounding of that zero is no scale.
    one_key = _sees_at_most_one_key(cfg)
    for what, ours, theirs in (("dq", dq, qt), ("dk", dk, kt), ("dv", dv, vt)):
        assert theirs.grad is not None
        if one_key and what != "dv":
            assert (ours == 0).all(), what  # exactly: p = 1 gives ds = dp - dp = 0
            assert np.abs(theirs.grad.numpy()).max() <= 1e-14 * np.abs(dy).max(), what
        else:
            assert _rel_diff(ours, theirs.grad.numpy()) <= RTOL, what
    for name, p in module.named_parameters():
        assert p.grad is not None
        ours, theirs = grads[name], p.grad.numpy()
        if one_key and name in {"in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight"}:
            zero = 2 * cfg.d_model if name.startswith("in_proj") else len(ours)  # the q and k blocks
            assert (ours[:zero] == 0).all(), name
            ours, theirs = ours[zero:], theirs[zero:]
        assert _rel_diff(ours, theirs) <= RTOL, name
    assert set(grads) == {name for name, _ in module.named_parameters()}


def _sees_at_most_one_key(cfg: CrossConfig) -> bool:
    valid = np.ones((cfg.batch, cfg.time, cfg.keys), bool)
    if cfg.lengths is not None:
        valid &= (np.arange(cfg.keys)[None, :] < np.array(cfg.lengths)[:, None])[:, None, :]
    if cfg.causal:
        valid &= np.tri(cfg.time, cfg.keys, dtype=bool)[None]
    return bool((valid.sum(axis=-1) <= 1).all())


@given(cfg=attention_configs(max_time=5))
def test_zero_dropout_in_training_and_dropout_in_evaluation_match_torch(cfg: AttentionConfig) -> None:
    """``dropout=0`` in training mode is PyTorch's training mode exactly; ``dropout>0`` in evaluation too."""
    _, params, x = build(cfg)
    mask = padding_mask(cfg)
    for rate, train in ((0.0, True), (0.4, False)):
        layer = L.multi_head_attention(
            cfg.d_model, cfg.heads, causal=cfg.causal, dropout=rate, dtype=np.float64
        )
        ctx = fdl.Context(train=train, key=fdl.random.key(cfg.seed))
        y, cache = forward_flow(layer, params, (x, mask), ctx)
        dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
        (dx, _), grads = backward_flow(layer, params, cache, dy)
        module = torch_attention(cfg, params, dropout=rate).train(train)
        _assert_self_attention_matches(module, cfg, x, dy, (y, dx, grads))


def _torch_attention_with_mask(
    p: dict[str, Any], inputs: tuple[Any, Any, Any], heads: int, allowed: Any, drop: Any
) -> Any:
    """Multi-head attention written out in torch ops, with a given dropout mask on the weights."""
    query, key, value = inputs
    d = query.shape[-1]
    w = p["in_proj_weight"]
    b = p["in_proj_bias"]

    def heads_of(a: Any) -> Any:
        return a.reshape(a.shape[0], a.shape[1], heads, d // heads).transpose(1, 2)

    q, k, v = (
        heads_of(a @ w[i * d : (i + 1) * d].T + b[i * d : (i + 1) * d])
        for i, a in enumerate((query, key, value))
    )
    scores = (q @ k.transpose(-1, -2)) / (d // heads) ** 0.5
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    out = (torch.softmax(scores, dim=-1) * drop) @ v
    o = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], d)
    return o @ p["out_proj.weight"].T + p["out_proj.bias"]


@given(cfg=cross_configs(max_time=5), rate=st.sampled_from([0.25, 0.6]))
def test_dropout_forward_and_backward_match_torch_autograd_with_our_mask(
    cfg: CrossConfig, rate: float
) -> None:
    """The same mask, handed to PyTorch's autograd: forward and every gradient agree to 1e-10."""
    cfg = cfg._replace(kdim=None, vdim=None)
    layer, params, (q, k, v) = build_cross(cfg, dropout=rate)
    mask = key_padding(cfg)
    y, cache = forward_flow(
        layer, params, (q, k, v, mask), fdl.Context(train=True, key=fdl.random.key(cfg.seed))
    )
    assert cache.drop is not None
    dy = np.random.default_rng(cfg.seed + 7).standard_normal(y.shape)
    (dq, dk, dv, _), grads = backward_flow(layer, params, cache, dy)

    p_t = {name: torch.tensor(np.array(a), requires_grad=True) for name, a in params.items()}
    qt, kt, vt = (torch.from_numpy(a).requires_grad_(True) for a in (q, k, v))
    allowed = torch.ones(cfg.batch, 1, cfg.time, cfg.keys, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & ~torch.from_numpy(mask)[:, None, None, :]
    if cfg.causal:
        allowed = allowed & torch.tril(torch.ones(cfg.time, cfg.keys, dtype=torch.bool))
    yt = _torch_attention_with_mask(p_t, (qt, kt, vt), cfg.heads, allowed, torch.from_numpy(cache.drop))
    yt.backward(torch.from_numpy(dy))
    assert _rel_diff(y, yt.detach().numpy()) <= RTOL
    for ours, theirs in ((dq, qt), (dk, kt), (dv, vt)):
        assert theirs.grad is not None and _rel_diff(ours, theirs.grad.numpy()) <= RTOL
    for name, t in p_t.items():
        assert t.grad is not None and _rel_diff(grads[name], t.grad.numpy()) <= RTOL, name
