"""Gradient descent on linear regression converges to the closed-form least-squares solution."""

from __future__ import annotations

import linear_regression
import numpy as np

import functional_dl as fdl


def test_gradient_descent_matches_closed_form() -> None:
    fit = linear_regression.fit(verbose=False)
    assert fit.max_difference < 1e-8
    x, y, true_w = linear_regression.make_data(fdl.random.split(fdl.random.key(0))[0])
    w, _ = linear_regression.closed_form(x, y)
    assert np.max(np.abs(w - true_w)) < 0.05  # the data really come from the line (noise 0.1)


def test_short_run_has_not_converged_yet() -> None:
    assert linear_regression.fit(steps=3, verbose=False).max_difference > 1e-3
