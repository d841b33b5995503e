"""PyTorch ``state_dict`` interop for tied weights: one array stored once here, listed twice there.

A PyTorch model tied the usual way (``head.weight = embed.weight``) lists both names in its
``state_dict``, holding one tensor; our ``tie`` stores the array once, under its source. A tied
GPT-style PyTorch model loaded into our tied ``decoder_only_transformer``, and ours exported into
it (or into its untied twin), give the same evaluation logits, to 1e-12 relative in float64 and
1e-6 in float32; the round trip is bit for bit; a PyTorch model that is not tied is refused,
naming both entries. The same holds for a plain ``tie`` of two dense layers, whichever of them
is the source, at the top of a network or inside one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import interop
from functional_dl import layers as L
from functional_dl.errors import ParamsError
from tests.interop.test_torch_sequences import _torch_lm, _torch_lm_forward

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.torch

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}
VOCAB, D_MODEL, MAX_LEN = 9, 4, 6
FORWARD_SETTINGS = settings(max_examples=10, deadline=None)


def _torch_dtype(dtype: Any) -> Any:
    return torch.float64 if dtype == np.float64 else torch.float32


def _gpt(dtype: Any, *, tied: bool = True, seed: int = 0) -> Any:
    """The PyTorch GPT (2 pre-norm causal blocks), its head's weight the embedding's when ``tied``."""
    torch.manual_seed(seed)
    module = _torch_lm(VOCAB, D_MODEL, MAX_LEN)
    if tied:
        module["head"].weight = module["embed"].weight
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or name.endswith("in_proj_bias"):
                p.normal_()  # off PyTorch's ones and zeros, so a swap would show
    module = module.to(_torch_dtype(dtype)).eval()
    assert (module["head"].weight is module["embed"].weight) == tied  # the cast kept the tie
    return module


def _ours(dtype: Any) -> fdl.Layer[Any]:
    return L.decoder_only_transformer(
        VOCAB, D_MODEL, 2, 2, max_len=MAX_LEN, dim_feedforward=8, dropout=0.0, dtype=dtype
    )


def _template(net: fdl.Layer[Any], in_shape: fdl.Shape, seed: int = 0) -> fdl.Params:
    return net.init(fdl.random.key(seed), in_shape)[1]


def _ids(data: st.DataObject) -> np.ndarray:
    batch, time = data.draw(st.integers(1, 3)), data.draw(st.integers(1, MAX_LEN))
    ids: np.ndarray = np.random.default_rng(data.draw(st.integers(0, 2**16))).integers(
        0, VOCAB, (batch, time)
    )
    return ids


def _rel(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-300))


def _torch_logits(module: Any, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out: np.ndarray = _torch_lm_forward(module, torch.from_numpy(ids)).numpy()
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FORWARD_SETTINGS
@given(data=st.data())
def test_a_tied_pytorch_gpt_loads_into_our_tied_model(dtype: Any, data: st.DataObject) -> None:
    ours, module = _ours(dtype), _gpt(dtype)
    params, _ = interop.from_torch(ours, module.state_dict(), _template(ours, (None, MAX_LEN)))
    assert "head.w" not in params  # stored once
    assert np.array_equal(params["embed.weight"], module["embed"].weight.detach().numpy())
    ids = _ids(data)
    logits, _ = ours.forward(params, ids)
    assert logits.dtype == dtype
    assert _rel(logits, _torch_logits(module, ids)) <= TOLERANCE[dtype]


def _moved(params: fdl.Params, seed: int) -> fdl.Params:
    """``params`` moved off their initial values (norm scales of one, zero biases)."""
    rng = np.random.default_rng(seed)
    return fdl.params.freeze(
        {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(v.dtype) for k, v in params.items()}
    )


@pytest.mark.parametrize("tied", [True, False], ids=["into_tied", "into_untied"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FORWARD_SETTINGS
@given(data=st.data())
def test_our_tied_model_exports_into_the_pytorch_gpt(dtype: Any, tied: bool, data: st.DataObject) -> None:
    ours, module = _ours(dtype), _gpt(dtype, tied=tied)
    seed = data.draw(st.integers(0, 2**16))
    params = _moved(_template(ours, (None, MAX_LEN), seed), seed)
    exported = interop.to_torch(ours, params, {}, module.state_dict())
    assert exported["head.weight"] is exported["embed.weight"]  # as a tied model's state_dict
    module.load_state_dict(exported)
    assert (module["head"].weight is module["embed"].weight) == tied
    assert np.array_equal(module["head"].weight.detach().numpy(), params["embed.weight"])
    ids = _ids(data)
    assert _rel(ours.forward(params, ids)[0], _torch_logits(module, ids)) <= TOLERANCE[dtype]


def _assert_round_trip(net: fdl.Layer[Any], module: Any, template: fdl.Params) -> fdl.Params:
    """Load ``module``, export it back: PyTorch's entries, in its order, bit for bit; and again."""
    reference = module.state_dict()
    params, _ = interop.from_torch(net, reference, template)
    exported = interop.to_torch(net, params, {}, reference)
    assert list(exported) == list(reference)
    for k, v in reference.items():
        assert torch.equal(exported[k], v) and exported[k].dtype == v.dtype, k
    again, _ = interop.from_torch(net, exported, template)
    fdl.testing.assert_bitwise_equal(again, params, "params")
    return params


def test_the_tied_gpt_round_trips_bit_for_bit() -> None:
    ours = _ours(np.float64)
    _assert_round_trip(ours, _gpt(np.float64), _template(ours, (None, MAX_LEN)))


def test_an_untied_pytorch_model_is_refused_naming_both_entries() -> None:
    ours, module = _ours(np.float64), _gpt(np.float64, tied=False)
    template = _template(ours, (None, MAX_LEN))
    with pytest.raises(
        ParamsError,
        match=r"^head\.dense: PyTorch's 'head\.weight' and 'embed\.weight' should be tied "
        r"\(our 'head\.w' is 'embed\.weight', stored once\) but hold different arrays",
    ):
        interop.from_torch(ours, module.state_dict(), template)
    loose, _ = interop.from_torch(ours, module.state_dict(), template, strict=False)
    assert np.array_equal(loose["embed.weight"], module["embed"].weight.detach().numpy())  # the source's
    assert "head.w" not in loose


def test_two_tensors_pass_as_tied_only_when_equal_bit_for_bit() -> None:
    ours = _ours(np.float64)
    template = _template(ours, (None, MAX_LEN))
    state = dict(_gpt(np.float64).state_dict())
    state["head.weight"] = state["embed.weight"].clone()  # a tied model saved and loaded again
    params, _ = interop.from_torch(ours, state, template)
    assert np.array_equal(params["embed.weight"], state["embed.weight"].numpy())
    one_ulp = state["head.weight"].clone()
    one_ulp[2, 1] = np.nextafter(one_ulp[2, 1].item(), np.inf)
    with pytest.raises(ParamsError, match="should be tied"):
        interop.from_torch(ours, {**state, "head.weight": one_ulp}, template)
    with pytest.raises(ParamsError, match="should be tied"):  # the shape is checked too
        interop.from_torch(ours, {**state, "head.weight": state["embed.weight"][:, :2]}, template)


def test_pairs_lists_the_tie() -> None:
    ours, module = _ours(np.float64), _gpt(np.float64)
    found = interop.pairs(ours, list(_template(ours, (None, MAX_LEN))), list(module.state_dict()))
    assert [(p.path, p.torch_prefix) for p in found] == [
        ("embed", "embed"),
        ("pos", "pos"),
        ("blocks.0", "blocks.0"),
        ("blocks.1", "blocks.1"),
        ("norm", "norm"),
        ("head", "head"),
    ]
    assert {p.path: p.ties for p in found if p.ties} == {"head": (("w", "embed.weight"),)}


def test_a_state_dict_listing_the_tied_weight_once_loads_with_a_key_map() -> None:
    """Saved without duplicates (as safetensors saves a tied model): the head is left unpaired."""
    ours = _ours(np.float64)
    template = _template(ours, (None, MAX_LEN))
    full = _gpt(np.float64).state_dict()
    once = {k: v for k, v in full.items() if k != "head.weight"}
    paths = {"embed": "embed", "pos": "pos", "blocks.0": "blocks.0", "blocks.1": "blocks.1", "norm": "norm"}
    params, _ = interop.from_torch(ours, once, template, key_map=paths)
    fdl.testing.assert_bitwise_equal(params, interop.from_torch(ours, full, template)[0], "params")
    with pytest.raises(ParamsError, match=r"unexpected PyTorch keys \['head\.weight'\]"):
        interop.from_torch(ours, full, template, key_map=paths)  # strict: nobody read it
    untied = _gpt(np.float64, tied=False).state_dict()
    with pytest.raises(ParamsError, match="should be tied"):  # paired by key_map, checked alike
        interop.from_torch(ours, untied, template, key_map={**paths, "head": "head"})


def _dense(n: int) -> fdl.Layer[Any]:
    return L.dense(n, dtype=np.float64)


#: Two dense layers ``(3, 3)`` tied one way or the other, at the top of a network or inside one:
#: ``(our network, the PyTorch module, the tied PyTorch layer names (alias, source))``.
DENSE_TIES: dict[str, tuple[Callable[[], fdl.Layer[Any]], Callable[[], Any], tuple[str, str]]] = {
    "second_is_first": (
        lambda: fdl.tie(fdl.serial(_dense(3), L.tanh(), _dense(3)), {"2.w": "0.w"}),
        lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)),
        ("2", "0"),
    ),
    "first_is_second": (
        lambda: fdl.tie(fdl.serial(_dense(3), L.tanh(), _dense(3)), {"0.w": "2.w"}),
        lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)),
        ("0", "2"),
    ),
    "nested": (
        lambda: fdl.serial(
            _dense(3), fdl.tie(fdl.serial(_dense(3), L.tanh(), _dense(3)), {"2.w": "0.w"}), _dense(2)
        ),
        lambda: nn.Sequential(
            nn.Linear(4, 3), nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)), nn.Linear(3, 2)
        ),
        ("1.2", "1.0"),
    ),
}


def _torch_module(make: Any, names: tuple[str, str], *, tied: bool) -> Any:
    torch.manual_seed(0)
    module = make().double().eval()
    if tied:
        module.get_submodule(names[0]).weight = module.get_submodule(names[1]).weight
    return module


@pytest.mark.parametrize("case", list(DENSE_TIES))
def test_tied_dense_layers_against_a_tied_sequential(case: str) -> None:
    make_ours, make_theirs, (alias, source) = DENSE_TIES[case]
    net = make_ours()
    in_shape = (None, 4 if case == "nested" else 3)
    template = _template(net, in_shape)
    module = _torch_module(make_theirs, (alias, source), tied=True)
    params = _assert_round_trip(net, module, template)
    x = np.random.default_rng(0).standard_normal((5, in_shape[1]))
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    assert _rel(net.forward(params, x)[0], theirs) <= 1e-12
    moved = _moved(params, 1)
    exported = interop.to_torch(net, moved, {}, module.state_dict())
    assert exported[f"{alias}.weight"] is exported[f"{source}.weight"]
    module.load_state_dict(exported)
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    assert _rel(net.forward(moved, x)[0], theirs) <= 1e-12
    untied = _torch_module(make_theirs, (alias, source), tied=False)
    with pytest.raises(
        ParamsError, match=rf"PyTorch's '{alias}\.weight' and '{source}\.weight' should be tied"
    ):
        interop.from_torch(net, untied.state_dict(), template)
