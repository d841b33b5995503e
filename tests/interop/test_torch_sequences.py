"""PyTorch ``state_dict`` interop for the sequence layers: recurrent, embedding, attention, transformer.

Each kind round-trips (``from_torch`` then ``to_torch`` gives PyTorch's entries back, in its order,
bit for bit) and the loaded layer computes what the PyTorch module computes, in float64. Layers
whose entries PyTorch keeps in submodules (attention's ``out_proj``, a transformer layer's six
submodules) pair in order inside larger networks, GPT-style model included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import interop
from functional_dl import layers as L
from functional_dl.errors import ParamsError

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.torch

F64 = np.float64


def _loaded(net: fdl.Layer[Any], module: Any, in_shape: Any) -> fdl.Params:
    """``net``'s params read from ``module``, after checking the round trip back to PyTorch."""
    module = module.double()
    _, template = net.init(fdl.random.key(0), in_shape)
    params, _ = interop.from_torch(net, module.state_dict(), template)
    exported = interop.to_torch(net, params, {}, module.state_dict())
    assert list(exported) == list(module.state_dict())
    for k, v in module.state_dict().items():
        assert torch.equal(exported[k], v), k
    return params


def _rel(ours: np.ndarray, theirs: Any) -> float:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-300))


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_recurrent_layers_round_trip_and_agree(kind: str) -> None:
    torch.manual_seed(0)
    module = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind](
        3, 4, num_layers=2, bidirectional=True, batch_first=True
    )
    ours = {"rnn": L.rnn, "gru": L.gru, "lstm": L.lstm}[kind](4, num_layers=2, bidirectional=True, dtype=F64)
    params = _loaded(ours, module, (None, 5, 3))
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    with torch.no_grad():
        theirs, _ = module(torch.from_numpy(x))
    assert _rel(ours.forward(params, x)[0], theirs) <= 1e-12


def test_embedding_and_learned_positions_round_trip_and_agree() -> None:
    torch.manual_seed(0)
    module = nn.Embedding(7, 3, padding_idx=0)
    ours = L.embedding(7, 3, padding_idx=0, dtype=F64)
    params = _loaded(ours, module, (None, 4))
    ids = np.array([[0, 1, 6, 2], [3, 3, 0, 5]])
    with torch.no_grad():
        theirs = module(torch.from_numpy(ids))
    assert _rel(ours.forward(params, ids)[0], theirs) == 0.0  # a lookup
    positions = _loaded(L.learned_positional_encoding(6, dtype=F64), nn.Embedding(6, 3), (None, 4, 3))
    assert positions["weight"].shape == (6, 3)


@pytest.mark.parametrize(("kdim", "vdim"), [(None, None), (3, 5)], ids=["packed", "separate"])
def test_multi_head_attention_round_trips_and_agrees(kdim: int | None, vdim: int | None) -> None:
    torch.manual_seed(0)
    module = nn.MultiheadAttention(4, 2, batch_first=True, kdim=kdim, vdim=vdim)
    with torch.no_grad():
        module.in_proj_bias.normal_()  # PyTorch starts it at zero
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 4))
    k, v = rng.standard_normal((2, 5, kdim or 4)), rng.standard_normal((2, 5, vdim or 4))
    if kdim is None:
        ours = L.multi_head_attention(4, 2, dtype=F64)
        params = _loaded(ours, module, (None, 3, 4))
        y, _ = ours.forward(params, q)
        q_t = torch.from_numpy(q)
        theirs = module(q_t, q_t, q_t, need_weights=False)[0]
    else:
        ours = L.multi_head_attention(4, 2, cross=True, kdim=kdim, vdim=vdim, dtype=F64)
        params = _loaded(ours, module, ((None, 3, 4), (None, 5, kdim), (None, 5, vdim)))
        y, _ = ours.forward(params, (q, k, v))  # type: ignore[arg-type]  # a tuple input
        theirs = module(*(torch.from_numpy(a) for a in (q, k, v)), need_weights=False)[0]
    assert _rel(y, theirs) <= 1e-12


def _encoder_layer(norm_first: bool) -> Any:
    torch.manual_seed(int(norm_first))
    module = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first, batch_first=True)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("norm") or name.endswith("in_proj_bias"):
                p.normal_()  # off PyTorch's ones and zeros, so a swap would show
    return module


def _torch_train_forward(module: Any, x: np.ndarray) -> Any:
    # Training mode with dropout 0: the plain maths (evaluation may take PyTorch's fused fast path).
    module.train()
    with torch.no_grad():
        return module(torch.from_numpy(x))


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_transformer_encoder_layer_round_trips_and_agrees(norm_first: bool) -> None:
    module = _encoder_layer(norm_first)
    ours = L.transformer_encoder_layer(4, 2, 6, 0.0, norm_first=norm_first, dtype=F64)
    params = _loaded(ours, module, (None, 3, 4))
    assert params["linear1.w"].shape == (6, 4) and params["norm2.scale"].shape == (4,)
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert _rel(ours.forward(params, x)[0], _torch_train_forward(module.double(), x)) <= 1e-12


def test_a_stack_of_encoder_layers_pairs_in_order() -> None:
    module = nn.Sequential(_encoder_layer(False), _encoder_layer(True))
    ours = fdl.serial(
        L.transformer_encoder_layer(4, 2, 6, 0.0, dtype=F64),
        L.transformer_encoder_layer(4, 2, 6, 0.0, norm_first=True, dtype=F64),
    )
    params = _loaded(ours, module, (None, 3, 4))
    assert np.array_equal(params["1.norm1.scale"], module[1].norm1.weight.detach().numpy())
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    assert _rel(ours.forward(params, x)[0], _torch_train_forward(module.double(), x)) <= 1e-12


def _torch_lm(vocab: int, d: int, max_len: int) -> Any:
    """The decoder-only model as PyTorch modules, registered in our order (untied)."""
    blocks = [
        nn.TransformerEncoderLayer(d, 2, 8, 0.0, activation="gelu", norm_first=True, batch_first=True)
        for _ in range(2)
    ]
    return nn.ModuleDict(
        {
            "embed": nn.Embedding(vocab, d),
            "pos": nn.Embedding(max_len, d),
            "blocks": nn.Sequential(*blocks),
            "norm": nn.LayerNorm(d),
            "head": nn.Linear(d, vocab, bias=False),
        }
    )


def _torch_lm_forward(m: Any, ids: Any) -> Any:
    t = ids.shape[1]
    h = m["embed"](ids) + m["pos"].weight[:t]
    causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    for block in m["blocks"]:
        h = block(h, src_mask=causal, is_causal=True)
    return m["head"](m["norm"](h))


def test_a_gpt_style_model_loads_from_its_pytorch_twin() -> None:
    torch.manual_seed(0)
    module = _torch_lm(9, 4, 6)
    ours = L.decoder_only_transformer(
        9, 4, 2, 2, max_len=6, dim_feedforward=8, dropout=0.0, tie_weights=False, dtype=F64
    )
    params = _loaded(ours, module, (None, 5))
    ids: np.ndarray = np.random.default_rng(0).integers(0, 9, (2, 5))
    module.double().train()
    with torch.no_grad():
        theirs = _torch_lm_forward(module, torch.from_numpy(ids))
    assert _rel(ours.forward(params, ids)[0], theirs) <= 1e-12


def test_a_span_that_does_not_line_up_is_refused_by_name() -> None:
    module = nn.Sequential(nn.Linear(4, 4), _encoder_layer(False))
    swapped = fdl.serial(L.transformer_encoder_layer(4, 2, 6, dtype=F64), L.dense(4, dtype=F64))
    _, template = swapped.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(
        ParamsError, match=r"^0\.transformer_encoder_layer: PyTorch module '0' cannot be where"
    ):
        interop.from_torch(swapped, module.double().state_dict(), template)
    lone = L.multi_head_attention(4, 2, dtype=F64)
    _, template = lone.init(fdl.random.key(0), (None, 3, 4))
    with pytest.raises(
        ParamsError, match=r"1 parameterised layers \[''\] \(spanning 2 modules\) cannot be paired"
    ):
        interop.from_torch(
            lone, {"in_proj_weight": torch.zeros(12, 4), "in_proj_bias": torch.zeros(12)}, template
        )
