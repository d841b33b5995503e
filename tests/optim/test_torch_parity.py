"""Trajectories of every optimizer PyTorch also has agree with ``torch.optim`` to 1e-9 relative.

Both sides start from the same float64 weights of a small tanh network and run 200 steps, each
computing its own gradients from its own parameters; after every step the parameters must agree
to ``1e-9`` relative (in the max norm of each parameter array).

PyTorch keeps some optimizer scalars (the step counts, NAdam's running product of momentum
coefficients) in tensors of the *default* dtype, float32 unless told otherwise; NAdam then drifts
by ~2e-9 from the float64 result. The tests run with ``torch.set_default_dtype(torch.float64)`` so
that the comparison is float64 throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_dl import optim as O
from tests.optim import torch_net

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

STEPS = 200
RTOL = 1e-9


@pytest.fixture(autouse=True)
def _torch_float64() -> Any:
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


class TorchCase(NamedTuple):
    """An optimizer here and its PyTorch counterpart with the same hyperparameters."""

    id: str
    ours: Callable[[], O.Optimizer[Any]]
    theirs: Callable[[Any], Any]  # params -> torch optimizer
    scheduler: Callable[[Any], Any] | None = None  # torch optimizer -> lr_scheduler


CASES = [
    TorchCase("sgd", lambda: O.sgd(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    TorchCase(
        "momentum", lambda: O.sgd(0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)
    ),
    TorchCase(
        "nesterov",
        lambda: O.sgd(0.1, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    ),
    TorchCase(
        "sgd_weight_decay",
        lambda: O.sgd(0.1, momentum=0.9, weight_decay=0.05),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05),
    ),
    TorchCase(
        "sgd_dampening",
        lambda: O.sgd(0.1, momentum=0.9, dampening=0.5),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5),
    ),
    TorchCase(
        "sgd_dampening_weight_decay",
        lambda: O.sgd(0.1, momentum=0.9, dampening=0.5, weight_decay=0.05),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.05),
    ),
    TorchCase("adam", lambda: O.adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    TorchCase(
        "adam_weight_decay",
        lambda: O.adam(1e-2, weight_decay=0.05),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.05),
    ),
    TorchCase(
        "adamw",
        lambda: O.adamw(1e-2, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    ),
    TorchCase("amsgrad", lambda: O.amsgrad(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True)),
    TorchCase("nadam", lambda: O.nadam(1e-2), lambda p: torch.optim.NAdam(p, lr=1e-2)),
    TorchCase("radam", lambda: O.radam(1e-2), lambda p: torch.optim.RAdam(p, lr=1e-2)),
    TorchCase(
        "nadamw",
        lambda: O.nadam(1e-2, weight_decay=0.1, decoupled_weight_decay=True),
        lambda p: torch.optim.NAdam(p, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    TorchCase(
        "radam_weight_decay",
        lambda: O.radam(1e-2, weight_decay=0.1),
        lambda p: torch.optim.RAdam(p, lr=1e-2, weight_decay=0.1),
    ),
    TorchCase(
        "radamw",
        lambda: O.radam(1e-2, weight_decay=0.1, decoupled_weight_decay=True),
        lambda p: torch.optim.RAdam(p, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
    ),
    TorchCase(
        "nadam_weight_decay",
        lambda: O.nadam(1e-2, weight_decay=0.1),
        lambda p: torch.optim.NAdam(p, lr=1e-2, weight_decay=0.1),
    ),
    TorchCase(
        "adagrad_weight_decay",
        lambda: O.adagrad(0.1, weight_decay=0.1),
        lambda p: torch.optim.Adagrad(p, lr=0.1, weight_decay=0.1),
    ),
    TorchCase(
        "adadelta_weight_decay",
        lambda: O.adadelta(0.5, rho=0.95, weight_decay=0.1),
        lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.95, weight_decay=0.1),
    ),
    # With alpha=0.9 this trajectory turns chaotic after ~150 steps: perturbing our own gradients
    # by 1e-15 relative moves step 200 by 4e-5, so no two implementations could agree there.
    TorchCase(
        "rmsprop_momentum",
        lambda: O.rmsprop(1e-3, alpha=0.95, momentum=0.5),
        lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.95, momentum=0.5),
    ),
    TorchCase(
        "amsgrad_adamw",
        lambda: O.adamw(1e-2, weight_decay=0.05, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05, amsgrad=True),
    ),
    TorchCase("rmsprop", lambda: O.rmsprop(1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    TorchCase(
        "rmsprop_centered",
        lambda: O.rmsprop(1e-3, centered=True, momentum=0.9, weight_decay=0.01),
        lambda p: torch.optim.RMSprop(p, lr=1e-3, centered=True, momentum=0.9, weight_decay=0.01),
    ),
    TorchCase(
        "adagrad",
        lambda: O.adagrad(0.1, lr_decay=0.01, initial_accumulator_value=0.1),
        lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    ),
    TorchCase("adadelta", lambda: O.adadelta(1.0), lambda p: torch.optim.Adadelta(p, lr=1.0)),
    TorchCase("adamax", lambda: O.adamax(1e-2), lambda p: torch.optim.Adamax(p, lr=1e-2)),
    TorchCase(
        "adamax_weight_decay",
        lambda: O.adamax(1e-2, b1=0.8, weight_decay=0.1),
        lambda p: torch.optim.Adamax(p, lr=1e-2, betas=(0.8, 0.999), weight_decay=0.1),
    ),
    TorchCase("adafactor", lambda: O.adafactor(1e-2), lambda p: torch.optim.Adafactor(p, lr=1e-2)),
    TorchCase(
        "adafactor_options",
        lambda: O.adafactor(0.3, beta2_decay=-0.5, eps1=1e-20, eps2=1e-2, d=2.0, weight_decay=0.1),
        lambda p: torch.optim.Adafactor(
            p, lr=0.3, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=2.0, weight_decay=0.1
        ),
    ),
    TorchCase(
        "adam_steplr",
        lambda: O.adam(O.exponential_decay(1e-2, 0.5, 50, staircase=True)),
        lambda p: torch.optim.Adam(p, lr=1e-2),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=50, gamma=0.5),
    ),
]


def trajectory_difference(case: TorchCase, steps: int = STEPS) -> float:
    """The largest relative difference ``max|ours - theirs| / max|theirs|`` over keys and steps."""
    params = torch_net.init_params()
    model = torch_net.torch_model(params)
    theirs = case.theirs(model.parameters())
    sched = case.scheduler(theirs) if case.scheduler else None
    opt = case.ours()
    state = opt.init(params)
    worst = 0.0
    for _ in range(steps):
        state, ours = opt.update(state, torch_net.grads(state.params))
        torch_net.torch_step(model, theirs, sched.step if sched else None)
        ref = torch_net.torch_params(model)
        for k, v in ref.items():
            worst = max(worst, float(np.max(np.abs(ours[k] - v)) / np.max(np.abs(v))))
    return worst


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_trajectory_matches_torch(case: TorchCase) -> None:
    params = torch_net.init_params()
    start = torch_net.torch_params(torch_net.torch_model(params))
    assert all(np.array_equal(start[k], params[k]) for k in params)  # same starting point
    assert trajectory_difference(case) < RTOL


def test_trajectories_move() -> None:
    # The comparison means something only if the parameters actually travel.
    params = torch_net.init_params()
    opt = O.adam(1e-2)
    state = opt.init(params)
    for _ in range(STEPS):
        state, _ = opt.update(state, torch_net.grads(state.params))
    assert all(np.max(np.abs(state.params[k] - params[k])) > 0.1 for k in params)


def test_sgd_nesterov_with_dampening_is_refused_like_torch() -> None:
    w = torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="dampening"):
        torch.optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.5, nesterov=True)
    with pytest.raises(ValueError, match=r"sgd: .*dampening"):
        O.sgd(0.1, momentum=0.9, dampening=0.5, nesterov=True)


@given(
    shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    scale=st.floats(1e-3, 1e3),
    max_norm=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**16),
)
def test_clip_by_global_norm_matches_torch(
    shapes: list[tuple[int, int]], scale: float, max_norm: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    grads = {f"{i}.w": scale * rng.normal(size=s) for i, s in enumerate(shapes)}
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    t = O.clip_by_global_norm(max_norm)
    ours, _ = t.update(grads, t.init(grads), grads)
    for tensor, k in zip(tensors, grads, strict=True):
        np.testing.assert_allclose(ours[k], tensor.grad.numpy(), rtol=1e-12, atol=0)


@given(
    lr=st.floats(1e-4, 1e-1),
    betas=st.tuples(st.floats(0.0, 0.99), st.floats(0.9, 0.9999)),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    flags=st.tuples(st.booleans(), st.booleans()),
)
def test_adam_family_matches_torch_for_any_hyperparameters(
    lr: float, betas: tuple[float, float], eps: float, weight_decay: float, flags: tuple[bool, bool]
) -> None:
    (b1, b2), (amsgrad, decoupled) = betas, flags
    ours_alias, theirs_cls = (O.adamw, torch.optim.AdamW) if decoupled else (O.adam, torch.optim.Adam)

    def ours() -> O.Optimizer[Any]:
        return ours_alias(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def theirs(p: Any) -> Any:
        return theirs_cls(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    assert trajectory_difference(TorchCase("adam", ours, theirs), steps=20) < RTOL


@given(
    lr=st.floats(1e-3, 0.5),
    momentum=st.floats(0.0, 0.99),
    dampening=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
)
def test_sgd_matches_torch_for_any_hyperparameters(
    lr: float, momentum: float, dampening: float, nesterov: bool, weight_decay: float
) -> None:
    nesterov = nesterov and momentum > 0 and not dampening  # both libraries refuse the rest
    hyper = {"momentum": momentum, "dampening": dampening, "weight_decay": weight_decay}
    case = TorchCase(
        "sgd",
        lambda: O.sgd(lr, nesterov=nesterov, **hyper),
        lambda p: torch.optim.SGD(p, lr=lr, nesterov=nesterov, **hyper),
    )
    assert trajectory_difference(case, steps=20) < RTOL


def _rosenbrock_difference(case: TorchCase, steps: int = STEPS) -> float:
    from tests.optim.problems import rosenbrock, rosenbrock_start

    start = rosenbrock_start()
    xy = torch.tensor(start["xy"].copy(), requires_grad=True)
    theirs = case.theirs([xy])
    opt = case.ours()
    state = opt.init(start)
    worst = 0.0
    for _ in range(steps):
        state, ours = opt.update(state, rosenbrock(state.params)[1])
        theirs.zero_grad()
        ((1 - xy[0]) ** 2 + 100 * (xy[1] - xy[0] ** 2) ** 2).backward()
        theirs.step()
        ref = xy.detach().numpy()
        worst = max(worst, float(np.max(np.abs(ours["xy"] - ref)) / np.max(np.abs(ref))))
    return worst


ROSENBROCK_CASES = [
    TorchCase(
        "momentum", lambda: O.sgd(1e-3, momentum=0.9), lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9)
    ),
    TorchCase(
        "dampening",
        lambda: O.sgd(1e-3, momentum=0.9, dampening=0.5),
        lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, dampening=0.5),
    ),
    TorchCase("adam", lambda: O.adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    TorchCase("nadam", lambda: O.nadam(1e-2), lambda p: torch.optim.NAdam(p, lr=1e-2)),
    TorchCase("radam", lambda: O.radam(1e-2), lambda p: torch.optim.RAdam(p, lr=1e-2)),
    TorchCase("rmsprop", lambda: O.rmsprop(1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    TorchCase("adagrad", lambda: O.adagrad(0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    TorchCase("adadelta", lambda: O.adadelta(1.0), lambda p: torch.optim.Adadelta(p, lr=1.0)),
    TorchCase("adamax", lambda: O.adamax(1e-2), lambda p: torch.optim.Adamax(p, lr=1e-2)),
    TorchCase("adafactor", lambda: O.adafactor(1e-2), lambda p: torch.optim.Adafactor(p, lr=1e-2)),
]


@pytest.mark.parametrize("case", ROSENBROCK_CASES, ids=[c.id for c in ROSENBROCK_CASES])
def test_rosenbrock_trajectory_matches_torch(case: TorchCase) -> None:
    assert _rosenbrock_difference(case) < RTOL
