"""scale_by_adam against its docstring formula, including ``eps_root`` (PyTorch has no eps_root)."""

from __future__ import annotations

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
