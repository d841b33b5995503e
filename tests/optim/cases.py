"""The registry of every named optimizer under test. Adding a case here contract-tests it.

Each case builds its optimizer for the quadratic bowl and for Rosenbrock (step sizes differ a lot
between the two) and says how many steps it gets; ``test_aliases.py`` runs every case through
convergence, dtype, purity, pickling and plain-data-state checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from functional_dl import optim as O


class OptimizerCase(NamedTuple):
    """One optimizer configuration.

    Attributes:
        id: test id.
        make: ``learning_rate -> optimizer`` (a number or a schedule).
        quad: learning rate and steps for the quadratic bowl.
        rosen: learning rate and steps for Rosenbrock.
        decay: the problems (``"quad"``, ``"rosen"``) on which the learning rate decays along a
            cosine over the run (sign-like and trust-ratio methods take steps of a fixed size,
            so they only settle with a decaying rate).
    """

    id: str
    make: Callable[[Any], O.Optimizer[Any]]
    quad: tuple[float, int]
    rosen: tuple[float, int]
    decay: tuple[str, ...] = ()


def _sgd(lr: Any) -> O.Optimizer[Any]:
    return O.sgd(lr)


def _momentum(lr: Any) -> O.Optimizer[Any]:
    return O.sgd(lr, momentum=0.9)


def _nesterov(lr: Any) -> O.Optimizer[Any]:
    return O.sgd(lr, momentum=0.9, nesterov=True)


def _sgd_wd(lr: Any) -> O.Optimizer[Any]:
    return O.sgd(lr, momentum=0.9, weight_decay=1e-5)


def _sgd_dampening(lr: Any) -> O.Optimizer[Any]:
    return O.sgd(lr, momentum=0.9, dampening=0.5)


def _adam(lr: Any) -> O.Optimizer[Any]:
    return O.adam(lr)


def _adamw(lr: Any) -> O.Optimizer[Any]:
    return O.adamw(lr, weight_decay=1e-5)


def _amsgrad(lr: Any) -> O.Optimizer[Any]:
    return O.amsgrad(lr)


def _nadam(lr: Any) -> O.Optimizer[Any]:
    return O.nadam(lr)


def _radam(lr: Any) -> O.Optimizer[Any]:
    return O.radam(lr)


def _rmsprop(lr: Any) -> O.Optimizer[Any]:
    return O.rmsprop(lr)


def _rmsprop_centered(lr: Any) -> O.Optimizer[Any]:
    return O.rmsprop(lr, centered=True, momentum=0.5)


def _adagrad(lr: Any) -> O.Optimizer[Any]:
    return O.adagrad(lr)


def _adadelta(lr: Any) -> O.Optimizer[Any]:
    return O.adadelta(lr)


def _lion(lr: Any) -> O.Optimizer[Any]:
    return O.lion(lr)


def _lamb(lr: Any) -> O.Optimizer[Any]:
    return O.lamb(lr)


def _lars(lr: Any) -> O.Optimizer[Any]:
    return O.lars(lr, trust_coefficient=0.1)


OPTIMIZER_CASES = [
    OptimizerCase("sgd", _sgd, (0.03, 300), (0.002, 8000)),
    OptimizerCase("momentum", _momentum, (0.003, 300), (0.003, 500)),
    OptimizerCase("nesterov", _nesterov, (0.003, 300), (0.001, 1500)),
    OptimizerCase("sgd_weight_decay", _sgd_wd, (0.003, 300), (0.003, 500)),
    OptimizerCase("sgd_dampening", _sgd_dampening, (0.006, 300), (0.006, 500)),
    OptimizerCase("adam", _adam, (0.03, 300), (0.01, 500)),
    OptimizerCase("adamw", _adamw, (0.03, 300), (0.01, 500)),
    OptimizerCase("amsgrad", _amsgrad, (0.03, 300), (0.01, 500)),
    OptimizerCase("nadam", _nadam, (0.03, 300), (0.001, 5000)),
    OptimizerCase("radam", _radam, (0.1, 300), (0.03, 500)),
    OptimizerCase("rmsprop", _rmsprop, (0.03, 300), (0.001, 5000)),
    OptimizerCase("rmsprop_centered", _rmsprop_centered, (0.01, 300), (0.001, 1500)),
    OptimizerCase("adagrad", _adagrad, (0.3, 300), (0.03, 5000)),
    OptimizerCase("adadelta", _adadelta, (1.0, 1000), (0.3, 5000), decay=("rosen",)),
    OptimizerCase("lion", _lion, (0.003, 1000), (0.001, 5000)),
    OptimizerCase("lamb", _lamb, (0.01, 2000), (0.01, 1500), decay=("quad", "rosen")),
    OptimizerCase("lars", _lars, (0.01, 300), (0.01, 500)),
]
