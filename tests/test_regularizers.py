"""``l2_penalty``: value and grads against finite differences and PyTorch, masks, dtypes, purity, training."""

from __future__ import annotations

import math
import pickle
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl import losses, optim, train
from functional_dl.errors import ParamsError
from functional_dl.optim import Mask, key_pattern, weights_only
from functional_dl.regularizers import l2_penalty
from functional_dl.testing import assert_bitwise_equal, numerical_gradient, snapshot
from functional_dl.testing import strategies as fst

_KEYS = ("0.w", "0.b", "1.scale", "1.bias", "2.w", "w")


@st.composite
def param_dicts(draw: st.DrawFn, dtype: type[np.floating[Any]] = np.float64) -> dict[str, fdl.Array]:
    """1..4 parameters with layer-like keys (weights and others), each of 1..2 axes of 1..4."""
    names = draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=4, unique=True))
    return {k: draw(fst.arrays(fst.shapes(max_dims=2, max_side=4), dtype=dtype)) for k in names}


@st.composite
def masks(draw: st.DrawFn, keys: list[str]) -> Mask | None:
    """Every accepted form of mask: none, a predicate, a pattern, a mapping naming every key."""
    kind = draw(st.sampled_from(["none", "weights_only", "pattern", "mapping"]))
    if kind == "none":
        return None
    if kind == "weights_only":
        return weights_only
    if kind == "pattern":
        return key_pattern("*.b*", "1.*")
    return {k: draw(st.booleans()) for k in keys}


def _selected(mask: Mask | None, keys: list[str]) -> set[str]:
    if mask is None:
        return set(keys)
    return {k for k in keys if (mask(k) if callable(mask) else mask[k])}


#: 0 or a realistic coefficient (a float32 product with a strength like 1e-189 underflows to 0).
strengths = st.one_of(st.just(0.0), st.floats(1e-6, 2.0))


@given(st.data(), strengths)
def test_value_is_the_formula_and_grads_match_finite_differences(
    data: st.DataObject, strength: float
) -> None:
    params = data.draw(param_dicts())
    mask = data.draw(masks(list(params)))
    chosen = _selected(mask, list(params))
    value, grads = l2_penalty(params, strength, mask)
    exact = strength / 2 * math.fsum(float(x) ** 2 for k in chosen for x in params[k].ravel())
    assert float(value) == pytest.approx(exact, rel=1e-12, abs=1e-300)
    # Central differences of a quadratic have no truncation error; what is left is rounding, about
    # 2^-52 |value| / eps = 2.2e-10 |value| with eps = 1e-6, hence the value-scaled absolute term.
    atol = 1e-8 + 1e-9 * abs(float(value))
    for name, p in params.items():

        def at(v: fdl.Array, name: str = name) -> float:
            return float(l2_penalty({**params, name: v}, strength, mask)[0])

        numeric = numerical_gradient(at, p)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=atol, err_msg=name)


@given(st.data())
def test_unselected_keys_get_zero_grads_and_add_nothing(data: st.DataObject) -> None:
    params = data.draw(param_dicts())
    mask = data.draw(masks(list(params)))
    chosen = _selected(mask, list(params))
    value, grads = l2_penalty(params, 0.3, mask)
    assert list(grads) == list(params)
    for k, p in params.items():
        assert grads[k].shape == p.shape and grads[k].dtype == p.dtype, k
        if k not in chosen:
            assert not np.any(grads[k]), k
    # Changing unselected parameters changes nothing; the value is that of the selected ones alone.
    moved = {k: p if k in chosen else p + 1.0 for k, p in params.items()}
    assert float(l2_penalty(moved, 0.3, mask)[0]) == float(value)
    sub_value, _ = l2_penalty({k: params[k] for k in chosen}, 0.3)
    assert float(sub_value) == pytest.approx(float(value), rel=1e-14)


def test_mask_forms_agree() -> None:
    params = {"0.w": np.array([[1.0, -2.0]]), "0.b": np.array([3.0]), "1.scale": np.array([4.0])}
    results = [
        l2_penalty(params, 0.1, mask)
        for mask in (weights_only, key_pattern("*.w"), {"0.w": True, "0.b": False, "1.scale": False})
    ]
    for value, grads in results:
        assert float(value) == pytest.approx(0.5 * 0.1 * 5.0)
        np.testing.assert_array_equal(grads["0.w"], 0.1 * params["0.w"])
        assert not np.any(grads["0.b"]) and not np.any(grads["1.scale"])
    value, grads = l2_penalty(params, 0.1)
    assert float(value) == pytest.approx(0.5 * 0.1 * (5.0 + 9.0 + 16.0))


def test_mapping_mask_must_name_every_key() -> None:
    with pytest.raises(ParamsError, match=r"l2_penalty.*'0\.b'"):
        l2_penalty({"0.w": np.ones(2), "0.b": np.ones(1)}, 0.1, {"0.w": True})


@pytest.mark.parametrize("strength", [-0.1, math.nan, math.inf])
def test_bad_strength_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="l2_penalty: strength"):
        l2_penalty({"w": np.ones(2)}, strength)


@given(param_dicts(np.float32), strengths)
def test_float32_is_preserved(params: dict[str, fdl.Array], strength: float) -> None:
    # A NumPy float64 strength must not promote either.
    value, grads = l2_penalty(params, np.float64(strength), weights_only)
    assert value.dtype == np.float32 and value.shape == ()
    assert all(g.dtype == np.float32 for g in grads.values())
    value64, grads64 = l2_penalty(
        {k: p.astype(np.float64) for k, p in params.items()}, strength, weights_only
    )
    assert float(value) == pytest.approx(float(value64), rel=1e-5, abs=1e-30)
    for k in params:
        # Subnormal float32 entries keep only an absolute precision of about 1e-45.
        np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-6, atol=1e-44, err_msg=k)


def test_empty_selection_and_mixed_dtypes() -> None:
    value, grads = l2_penalty({"0.b": np.ones(2, np.float32)}, 0.5, weights_only)
    assert value.dtype == np.float32 and float(value) == 0.0 and not np.any(grads["0.b"])
    value, _ = l2_penalty({"0.w": np.ones(2, np.float32), "1.w": np.ones(2)}, 0.5)
    assert value.dtype == np.float64 and float(value) == pytest.approx(1.0)


@given(param_dicts(), strengths)
def test_pure(params: dict[str, fdl.Array], strength: float) -> None:
    frozen = fdl.params.freeze(params)  # read-only arrays: an in-place update would raise
    before = snapshot(frozen)
    first, second = (l2_penalty(frozen, strength, weights_only) for _ in range(2))
    assert_bitwise_equal(frozen, before, "params were modified")
    assert_bitwise_equal({"value": first[0], **first[1]}, {"value": second[0], **second[1]}, "repeated call")
    assert all(g is not p for g, p in zip(first[1].values(), frozen.values(), strict=True))


@given(param_dicts(), strengths, st.floats(0.01, 1.0), st.sampled_from([np.float64, np.float32]))
def test_sgd_weight_decay_of_torch_is_an_sgd_step_on_the_l2_grads(
    params: dict[str, fdl.Array], wd: float, lr: float, dtype: type[np.floating[Any]]
) -> None:
    """``torch.optim.SGD(weight_decay=wd)`` with zero data gradient steps ``-lr * wd * p`` (masked by
    parameter groups); that is our SGD step on the grads of ``l2_penalty(params, wd, mask)``."""
    torch = pytest.importorskip("torch")
    params = {k: p.astype(dtype) for k, p in params.items()}
    _, grads = l2_penalty(params, wd, weights_only)
    opt = optim.sgd(lr)
    ours = opt.update(opt.init(params), grads)[1]
    tensors = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    groups = [
        {"params": [t for k, t in tensors.items() if weights_only(k)], "weight_decay": wd},
        {"params": [t for k, t in tensors.items() if not weights_only(k)], "weight_decay": 0.0},
    ]
    theirs = torch.optim.SGD([g for g in groups if g["params"]], lr=lr)
    for t in tensors.values():
        t.grad = torch.zeros_like(t)
    theirs.step()
    # p - lr * wd * p cancels when lr * wd is near 1, so a one-ulp difference in how either side
    # rounds lr * wd * p (PyTorch adds the decay into the zero gradient, then takes the step) is
    # compared with the scale |p| of the terms, not with the small result.
    eps = float(np.finfo(dtype).eps)
    for k, t in tensors.items():
        atol = 2 * eps * float(np.max(np.abs(params[k])))
        np.testing.assert_allclose(ours[k], t.detach().numpy(), rtol=2 * eps, atol=atol, err_msg=k)


@given(param_dicts(), strengths)
def test_value_and_grads_match_torch_autograd(params: dict[str, fdl.Array], wd: float) -> None:
    torch = pytest.importorskip("torch")
    value, grads = l2_penalty(params, wd, weights_only)
    tensors = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    zero = torch.zeros((), dtype=torch.float64, requires_grad=True)  # backward works with no weight
    theirs = 0.5 * wd * sum((t.pow(2).sum() for k, t in tensors.items() if weights_only(k)), zero)
    theirs.backward()
    assert float(value) == pytest.approx(theirs.item(), rel=1e-13, abs=1e-300)
    for k, t in tensors.items():
        expected = t.grad.numpy() if t.grad is not None else np.zeros_like(params[k])
        np.testing.assert_allclose(grads[k], expected, rtol=1e-15, atol=0, err_msg=k)


def _two_moons_like(n: int = 64) -> tuple[fdl.Array, fdl.Array]:
    x = fdl.random.normal(fdl.random.key(0), (n, 3), np.float32)
    y = (x[:, :1] * x[:, 1:2] > 0).astype(np.float32)
    return x, y


def _weight_norm(params: fdl.Params) -> float:
    return fdl.params.global_norm({k: v for k, v in params.items() if weights_only(k)})


def test_fit_with_the_penalty_shrinks_the_weights() -> None:
    net = fdl.serial(L.dense(16), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(1), (None, 3))
    opt = optim.sgd(0.1)
    norms = {}
    penalty = partial(l2_penalty, strength=0.05, mask=weights_only)
    for name, pen in {"plain": None, "l2": penalty}.items():
        result = train.fit(
            net,
            losses.sigmoid_binary_cross_entropy,
            opt,
            train.init_train_state(opt, params),
            _two_moons_like(),
            key=fdl.random.key(2),
            epochs=30,
            batch_size=16,
            penalty=pen,
            progress="none",
        )
        norms[name] = _weight_norm(result.train_state.params)
        if pen is not None:
            assert len(result.history["penalty"]) == 30
    assert norms["l2"] < 0.9 * norms["plain"]
    # The partial is a plain value: it pickles and computes the same after a round trip.
    restored = pickle.loads(pickle.dumps(penalty))
    assert_bitwise_equal(restored(params)[1], penalty(params)[1], "unpickled penalty")


def test_train_step_penalty_equals_sgd_weight_decay() -> None:
    """Loss-side L2 on every parameter is SGD's ``weight_decay`` (with momentum too), step by step."""
    net = fdl.serial(L.dense(8), L.tanh(), L.dense(1))
    _, params = net.init(fdl.random.key(3), (None, 3))
    params = fdl.params.cast(params, np.float64)
    x, y = _two_moons_like(16)
    batch = (x.astype(np.float64), y.astype(np.float64))
    loss = losses.sigmoid_binary_cross_entropy
    with_penalty = optim.sgd(0.1, momentum=0.9)
    with_decay = optim.sgd(0.1, momentum=0.9, weight_decay=0.02)
    a = train.init_train_state(with_penalty, params)
    b = train.init_train_state(with_decay, params)
    step_a = train.train_step(net, loss, with_penalty, penalty=partial(l2_penalty, strength=0.02))
    step_b = train.train_step(net, loss, with_decay)
    for i in range(5):
        before = a.params
        a, logs = step_a(a, batch, fdl.random.key(i))
        b, _ = step_b(b, batch, fdl.random.key(i))
        assert logs["penalty"] == float(l2_penalty(before, 0.02)[0])
        for k in params:
            np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-13, atol=1e-15, err_msg=k)
