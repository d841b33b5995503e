"""The ownership rule of ``optim/base.py``, for every transformation and named optimizer in the registries.

A transformation writes only into arrays it allocated in this call, and never returns as an update
an array that it keeps in its state. Each case is followed by a transformation that breaks the
first half on purpose (it scales its incoming updates in place): every state, old and new, and the
params must come out exactly as they do behind a follower that allocates its result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from functional_dl import optim as O
from functional_dl.optim.base import EmptyState, GradientTransformation
from functional_dl.optim.transforms import empty_init
from functional_dl.testing import assert_bitwise_equal, snapshot
from functional_dl.types import Array, Params
from tests.optim.cases import OPTIMIZER_CASES, TRANSFORM_CASES, OptimizerCase, TransformCase
from tests.optim.state_checks import arrays

_RNG = np.random.default_rng(7)
PARAMS = {"0.w": _RNG.normal(size=(3, 4)), "0.b": _RNG.normal(size=4), "2.w": _RNG.normal(size=(2, 3))}


def _scale_in_place(updates: Params, state: EmptyState, params: Params, /) -> tuple[Params, EmptyState]:
    for g in updates.values():
        np.multiply(g, 0.5, out=g)  # breaks the rule: writes into arrays it was given
    return dict(updates), state


def _scale_copying(updates: Params, state: EmptyState, params: Params, /) -> tuple[Params, EmptyState]:
    return {k: g * 0.5 for k, g in updates.items()}, state


IN_PLACE: GradientTransformation[EmptyState] = GradientTransformation(empty_init, _scale_in_place)
COPYING: GradientTransformation[EmptyState] = GradientTransformation(empty_init, _scale_copying)


def _grads(step: int) -> dict[str, Array]:
    rng = np.random.default_rng(100 + step)
    return {k: rng.normal(size=p.shape) for k, p in PARAMS.items()}  # fresh, writable arrays


def _trajectory(
    part: GradientTransformation[Any] | O.Optimizer[Any], follower: GradientTransformation[EmptyState]
) -> tuple[list[dict[str, Array]], dict[str, Array]]:
    """The state after each of four steps (copied as it was made), and the final params."""
    opt = O.optimizer(O.chain(part, follower))
    params_before = snapshot(PARAMS)
    state = opt.init(PARAMS)
    states = [state]
    made = [snapshot(arrays(state))]
    for step in range(4):
        state, params = opt.update(state, _grads(step))
        states.append(state)
        made.append(snapshot(arrays(state)))
    for i, (kept, as_made) in enumerate(zip(states, made, strict=True)):
        assert_bitwise_equal(arrays(kept), as_made, f"state {i} was written into later")
    assert_bitwise_equal(PARAMS, params_before, "the initial params were written into")
    return made, snapshot(params)


def _check(part: GradientTransformation[Any] | O.Optimizer[Any]) -> None:
    expected_states, expected_params = _trajectory(part, COPYING)
    states, params = _trajectory(part, IN_PLACE)
    for i, (got, want) in enumerate(zip(states, expected_states, strict=True)):
        assert_bitwise_equal(got, want, f"state {i} differs behind an in-place follower")
    assert_bitwise_equal(params, expected_params, "params differ behind an in-place follower")


@pytest.mark.parametrize("case", TRANSFORM_CASES, ids=[c.id for c in TRANSFORM_CASES])
def test_no_transformation_hands_out_an_array_it_keeps(case: TransformCase) -> None:
    _check(case.make())


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=[c.id for c in OPTIMIZER_CASES])
def test_no_named_optimizer_hands_out_an_array_it_keeps(case: OptimizerCase) -> None:
    _check(case.make(0.01))


def test_the_check_catches_a_transformation_that_returns_its_buffer() -> None:
    # The test above can fail: a momentum that hands out its own buffer is caught.
    def leaky_update(updates: Params, state: O.TraceState, params: Params, /) -> tuple[Params, O.TraceState]:
        new = {k: state.trace[k] * 0.9 + g for k, g in updates.items()}
        return new, O.TraceState(state.step + 1, new)

    leaky = GradientTransformation(O.trace(0.9).init, leaky_update)
    with pytest.raises(AssertionError, match="differs behind an in-place follower"):
        _check(leaky)
