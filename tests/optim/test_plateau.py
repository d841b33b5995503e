"""Reduce-on-plateau against ``torch.optim.lr_scheduler.ReduceLROnPlateau``, step by step."""

from __future__ import annotations

import numpy as np
import pytest

from functional_dl import optim as O

P0 = {"w": np.array([1.0, -1.0])}
G = {"w": np.array([0.5, 2.0])}


@pytest.mark.torch
def test_reduce_on_plateau_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    losses = np.concatenate(
        [np.linspace(5, 1, 10), 1 + 0.01 * rng.random(30), np.linspace(1, 0.5, 5), np.ones(20)]
    )
    for kwargs in (
        {"factor": 0.5, "patience": 3},
        {"factor": 0.1, "patience": 2, "cooldown": 2, "threshold": 0.01},
        {"factor": 0.5, "patience": 1, "threshold": 0.05, "threshold_mode": "abs", "min_scale": 0.1},
    ):
        theirs_kwargs = {("min_lr" if k == "min_scale" else k): v for k, v in kwargs.items()}
        param = torch.zeros(1, requires_grad=True)
        topt = torch.optim.SGD([param], lr=1.0)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **theirs_kwargs)
        opt = O.optimizer(O.chain(O.scale_by_learning_rate(1.0), O.reduce_on_plateau(**kwargs)))
        state = opt.init(P0)
        for loss in losses:
            sched.step(float(loss))
            state = O.observe_loss(state, float(loss))
            assert O.current_learning_rate(state) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        assert topt.param_groups[0]["lr"] < 1.0  # the test saw reductions


def test_reduce_on_plateau_scales_updates() -> None:
    opt = O.optimizer(O.chain(O.scale_by_learning_rate(1.0), O.reduce_on_plateau(factor=0.5, patience=0)))
    state = opt.init(P0)
    state = O.observe_loss(O.observe_loss(state, 1.0), 1.0)
    state, params = opt.update(state, G)
    np.testing.assert_allclose(params["w"], P0["w"] - 0.5 * G["w"])
    with pytest.raises(ValueError, match="NaN"):
        O.observe_loss(state, float("nan"))
