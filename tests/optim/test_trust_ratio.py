"""LAMB and LARS against their published update rules, in closed form (PyTorch has neither)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(a * a)))


@given(seed=st.integers(0, 2**16), wd=st.sampled_from([0.0, 0.01]))
def test_lamb_follows_published_rule(seed: int, wd: float) -> None:
    # You et al. 2020, Algorithm 2, with Adam's bias correction and phi = identity.
    rng = np.random.default_rng(seed)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-6
    params = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    opt = O.lamb(lr, weight_decay=wd)
    state = opt.init(params)
    for t in range(1, 8):
        grads = {k: rng.normal(size=x.shape) for k, x in params.items()}
        expected = {}
        for k, p in params.items():
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            r = (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps) + wd * p
            expected[k] = p - lr * _norm(p) / _norm(r) * r
        params = expected
        state, ours = opt.update(state, grads)
        for k in params:
            np.testing.assert_allclose(ours[k], params[k], rtol=1e-12)


@given(seed=st.integers(0, 2**16), nesterov=st.booleans())
def test_lars_follows_published_rule(seed: int, nesterov: bool) -> None:
    # You et al. 2017, Algorithm 1: local lr = eta ||w|| / ||g + wd w||, heavy-ball momentum.
    rng = np.random.default_rng(seed)
    lr, wd, eta, mom = 0.1, 1e-3, 1e-3, 0.9
    w = rng.normal(size=(5, 2))
    buf = np.zeros_like(w)
    opt = O.lars(lr, weight_decay=wd, trust_coefficient=eta, momentum=mom, nesterov=nesterov)
    state = opt.init({"w": w})
    for _ in range(8):
        g = rng.normal(size=w.shape)
        d = g + wd * w
        s = eta * _norm(w) / _norm(d) * d
        buf = mom * buf + s
        w = w - lr * (s + mom * buf if nesterov else buf)
        state, ours = opt.update(state, {"w": g})
        np.testing.assert_allclose(ours["w"], w, rtol=1e-12)


def test_trust_ratio_is_one_for_zero_norms() -> None:
    t = O.scale_by_trust_ratio()
    params = {"b": np.zeros(3), "w": np.ones(3)}
    updates = {"b": np.ones(3), "w": np.zeros(3)}
    out, _ = t.update(updates, t.init(params), params)
    np.testing.assert_array_equal(out["b"], updates["b"])
    np.testing.assert_array_equal(out["w"], updates["w"])


@pytest.mark.parametrize("coefficient", [1.0, 0.01])
def test_trust_ratio_rescales_to_param_norm(coefficient: float) -> None:
    t = O.scale_by_trust_ratio(coefficient)
    params = {"w": np.array([3.0, 4.0])}
    out, _ = t.update({"w": np.array([0.0, 0.5])}, t.init(params), params)
    np.testing.assert_allclose(out["w"], [0.0, 5.0 * coefficient])
