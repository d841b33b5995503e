"""Golden tests: chain, named_chain, masked and partition give each parameter exactly its transform."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from functional_dl import optim as O
from functional_dl.errors import ParamsError

PARAMS = {
    "0.w": np.full((2, 2), 2.0),
    "0.b": np.full(2, 3.0),
    "1.scale": np.full(2, 5.0),
    "2.w": np.full((1, 2), 7.0),
}
GRADS = {k: np.ones_like(v) for k, v in PARAMS.items()}


def _apply(t: O.GradientTransformation[Any]) -> dict[str, float]:
    updates, _ = t.update(GRADS, t.init(PARAMS), PARAMS)
    assert updates.keys() == PARAMS.keys()
    # every array is constant here, so one number per key tells the whole story
    return {k: float(np.unique(u)[0]) for k, u in updates.items() if np.unique(u).size == 1}


def test_weights_only_selects_weight_matrices() -> None:
    assert [k for k in PARAMS if O.weights_only(k)] == ["0.w", "2.w"]
    assert not O.weights_only("0.gamma") and not O.weights_only("block.bias") and O.weights_only("w")


def test_chain_applies_in_order() -> None:
    # (g + 0.5 p) * 2, then * -0.1: order matters (decay before scaling)
    t = O.chain(O.add_decayed_weights(0.5), O.scale(2.0), O.scale_by_learning_rate(0.1))
    got = _apply(t)
    assert got == pytest.approx({k: -0.1 * 2.0 * (1.0 + 0.5 * float(PARAMS[k].flat[0])) for k in PARAMS})


def test_masked_decay_touches_weights_only() -> None:
    got = _apply(O.add_decayed_weights(0.1, mask=O.weights_only))
    assert got == pytest.approx({"0.w": 1.2, "0.b": 1.0, "1.scale": 1.0, "2.w": 1.7})


def test_masked_with_mapping_mask() -> None:
    mask = {"0.w": False, "0.b": True, "1.scale": False, "2.w": True}
    got = _apply(O.masked(O.scale(3.0), mask))
    assert got == {"0.w": 1.0, "0.b": 3.0, "1.scale": 1.0, "2.w": 3.0}


def test_masked_inner_state_covers_selected_keys_only() -> None:
    t = O.masked(O.trace(0.9), O.weights_only)
    state = t.init(PARAMS)
    assert isinstance(state.inner, O.TraceState)
    assert sorted(state.inner.trace) == ["0.w", "2.w"]


def test_partition_gives_each_group_its_transform() -> None:
    def group(key: str) -> str:
        if O.weights_only(key):
            return "weights"
        return "scales" if key.endswith("scale") else "biases"

    t = O.partition(
        {
            "weights": O.chain(O.add_decayed_weights(0.1), O.scale_by_learning_rate(1.0)),
            "biases": O.scale_by_learning_rate(0.5),
            "scales": O.scale(0.0),
        },
        group,
    )
    got = _apply(t)
    assert got == pytest.approx({"0.w": -1.2, "0.b": -0.5, "1.scale": 0.0, "2.w": -1.7})
    state = t.init(PARAMS)
    assert sorted(state.inner) == ["biases", "scales", "weights"]


def test_partition_rejects_unknown_label() -> None:
    t = O.partition({"a": O.scale(1.0)}, lambda k: "a" if k.endswith("w") else "b")
    with pytest.raises(ParamsError, match=r"'0\.b' has label 'b'"):
        t.init(PARAMS)


def test_mapping_mask_must_name_every_key() -> None:
    t = O.masked(O.scale(2.0), {"0.w": True})
    with pytest.raises(ParamsError, match=r"no entry for \['0.b', '1.scale', '2.w'\]"):
        t.init(PARAMS)


def test_named_chain_keeps_state_by_name() -> None:
    t = O.named_chain(("momentum", O.trace(0.5)), ("lr", O.scale_by_learning_rate(1.0)))
    state = t.init(PARAMS)
    _, state = t.update(GRADS, state, PARAMS)
    u2, state = t.update(GRADS, state, PARAMS)
    assert float(u2["0.w"][0, 0]) == -1.5
    momentum, lr = state["momentum"], state["lr"]
    assert isinstance(momentum, O.TraceState) and isinstance(lr, O.ScaleByLearningRateState)
    assert float(momentum.trace["0.b"][0]) == 1.5
    assert lr.step == 2
    with pytest.raises(ValueError, match="unique"):
        O.named_chain(("a", O.scale(1.0)), ("a", O.scale(2.0)))


def test_adamw_mask_spares_biases() -> None:
    opt = O.adamw(0.1, weight_decay=0.5, mask=O.weights_only)
    zero = {k: np.zeros_like(g) for k, g in GRADS.items()}
    _, params = opt.update(opt.init(PARAMS), zero)
    for k, p in PARAMS.items():  # zero gradient: only the decay moves the params
        expected = p * (1 - 0.1 * 0.5) if O.weights_only(k) else p
        np.testing.assert_allclose(params[k], expected, rtol=1e-15)


def test_partition_by_key_pattern() -> None:
    labels = O.labels_by_pattern({"2.*": "head", "*.w": "decay", "*": "plain"})
    t = O.partition(
        {"head": O.scale(0.0), "decay": O.add_decayed_weights(1.0), "plain": O.scale(-1.0)}, labels
    )
    assert _apply(t) == {"0.w": 3.0, "0.b": -1.0, "1.scale": -1.0, "2.w": 0.0}
    with pytest.raises(ParamsError, match="matches none"):
        O.labels_by_pattern({"*.w": "a"})("0.b")


def test_masked_by_key_pattern() -> None:
    assert _apply(O.masked(O.scale(2.0), O.key_pattern("0.*"))) == {
        "0.w": 2.0,
        "0.b": 2.0,
        "1.scale": 1.0,
        "2.w": 1.0,
    }


def test_weights_only_on_a_real_network() -> None:
    import functional_dl as fdl
    from functional_dl import layers as L

    net = fdl.serial(L.dense(4), L.batch_norm(), L.relu(), L.dense(2, use_bias=True))
    _, params = net.init(fdl.random.key(0), (None, 3))
    assert sorted(k for k in params if O.weights_only(k)) == ["0.w", "3.w"]
    assert {k.rpartition(".")[2] for k in params if not O.weights_only(k)} >= {"b", "scale"}
