"""scale_by_adam against its docstring formula, including ``eps_root`` (PyTorch has no eps_root).

The update runs the folded bias correction; it is checked here against the plain formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O


@given(
    seed=st.integers(0, 2**16),
    eps=st.sampled_from([1e-8, 1e-3]),
    eps_root=st.sampled_from([0.0, 1e-8, 1e-2]),
    amsgrad=st.booleans(),
)
def test_scale_by_adam_follows_its_formula(seed: int, eps: float, eps_root: float, amsgrad: bool) -> None:
    rng = np.random.default_rng(seed)
    b1, b2 = 0.8, 0.95
    t_form = O.scale_by_adam(b1, b2, eps, eps_root, amsgrad)
    params = {"w": rng.normal(size=(3, 2))}
    state = t_form.init(params)
    m = v = v_max = np.zeros((3, 2))
    for t in range(1, 6):
        g = rng.normal(size=(3, 2)) * 10.0 ** rng.integers(-4, 2)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        v_used = v_max if amsgrad else v
        expected = (m / (1 - b1**t)) / (np.sqrt(v_used / (1 - b2**t) + eps_root) + eps)
        updates, state = t_form.update({"w": g}, state, params)
        np.testing.assert_allclose(updates["w"], expected, rtol=1e-13)
    assert state.step == 5


@given(
    seed=st.integers(0, 2**16),
    t=st.integers(1, 10_000),
    eps=st.sampled_from([1e-8, 1e-3]),
    eps_root=st.sampled_from([0.0, 1e-8, 1e-2]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_folded_bias_correction_agrees_with_the_plain_formula(
    seed: int, t: int, eps: float, eps_root: float, dtype: type[np.floating[Any]]
) -> None:
    # The folded form rearranges the same formula, so the two differ by rounding only: within a
    # relative 4 machine epsilons of the dtype (about 2.7 is the worst seen over 3000 draws).
    rng = np.random.default_rng(seed)
    b1, b2 = 0.9, 0.999
    scale = 10.0 ** rng.integers(-6, 3)
    m = (rng.normal(size=(4, 5)) * scale).astype(dtype)
    v = (rng.uniform(0.0, 2.0, size=(4, 5)) * scale**2).astype(dtype)
    plain = O.adam_direction(m, v, t=t, b1=b1, b2=b2, eps=eps, eps_root=eps_root)
    folded = O.folded_adam_direction(m, v, O.folded_bias_correction(t, b1, b2, eps, eps_root))
    assert folded.dtype == plain.dtype == dtype
    np.testing.assert_allclose(folded, plain, rtol=4 * float(np.finfo(dtype).eps), atol=0.0)


def test_adam_is_the_textbook_step_with_the_learning_rate() -> None:
    # u = -lr * mu_hat / (sqrt(nu_hat) + eps), mu_hat = mu / (1 - b1^t), nu_hat = nu / (1 - b2^t).
    rng = np.random.default_rng(0)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = rng.normal(size=(3, 4))
    mu = nu = np.zeros_like(p)
    opt = O.adam(lr, b1=b1, b2=b2, eps=eps)
    state = opt.init({"w": p})
    for t in range(1, 8):
        g = rng.normal(size=p.shape)
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g * g
        p = p - lr * (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t)) + eps)
        state, params = opt.update(state, {"w": g})
        np.testing.assert_allclose(params["w"], p, rtol=1e-13)
