"""Lion against its published update rule (Chen et al., 2023, Algorithm 2), in closed form."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O


@given(seed=st.integers(0, 2**16), wd=st.sampled_from([0.0, 0.1]))
def test_lion_follows_published_rule(seed: int, wd: float) -> None:
    rng = np.random.default_rng(seed)
    lr, b1, b2 = 0.01, 0.9, 0.99
    p = rng.normal(size=(3, 4))
    m = np.zeros_like(p)
    opt = O.lion(lr, b1=b1, b2=b2, weight_decay=wd)
    state = opt.init({"w": p})
    for _ in range(10):
        g = rng.normal(size=p.shape)
        c = b1 * m + (1 - b1) * g
        p = p - lr * (np.sign(c) + wd * p)
        m = b2 * m + (1 - b2) * g
        state, params = opt.update(state, {"w": g})
        np.testing.assert_allclose(params["w"], p, rtol=1e-13, atol=1e-15)
    # The alias runs fused, on one flat vector per dtype; the moment still reads by parameter name.
    np.testing.assert_allclose(O.find_state(state, O.ScaleByLionState).mu["w"], m, rtol=1e-13)
