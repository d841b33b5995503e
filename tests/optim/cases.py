"""The registries of every named optimizer and every gradient transformation under test.

Adding a case here contract-tests it.

* ``OPTIMIZER_CASES``: each builds its optimizer for the quadratic bowl and for Rosenbrock (step
  sizes differ a lot between the two) and says how many steps it gets; ``test_aliases.py`` runs
  every case through convergence, dtype, purity, pickling and plain-data-state checks.
* ``TRANSFORM_CASES``: each builds one transformation and says whether it is elementwise;
  ``test_ownership.py`` checks the ownership rule for every case (and every optimizer), and
  ``test_fuse.py`` checks that the elementwise ones fuse to the same bits and the others are
  refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from functional_dl import optim as O
from functional_dl.optim.base import GradientTransformation


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


def _adamax(lr: Any) -> O.Optimizer[Any]:
    return O.adamax(lr)


def _adafactor(lr: Any) -> O.Optimizer[Any]:
    return O.adafactor(lr)


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
    OptimizerCase("adamax", _adamax, (0.1, 300), (0.03, 1000)),
    # Relative steps shrinking as 1/sqrt(t) make Adafactor slow in the Rosenbrock valley.
    OptimizerCase("adafactor", _adafactor, (0.1, 300), (0.05, 30000)),
    OptimizerCase("lion", _lion, (0.003, 1000), (0.001, 5000)),
    OptimizerCase("lamb", _lamb, (0.01, 2000), (0.01, 1500), decay=("quad", "rosen")),
    OptimizerCase("lars", _lars, (0.01, 300), (0.01, 500)),
]


class TransformCase(NamedTuple):
    """One gradient transformation.

    Attributes:
        id: test id.
        make: builds the transformation (for params named ``"0.w"``, ``"0.b"``, ``"2.w"``).
        elementwise: whether the transformation must declare itself elementwise.
    """

    id: str
    make: Callable[[], GradientTransformation[Any]]
    elementwise: bool


def _halving(step: int) -> float:
    return 0.1 * 0.5**step


def _decay_scale(step: int) -> float:
    return 1.0 / (1 + step)


def _label(key: str) -> str:
    return "w" if key.endswith(".w") else "b"


def _scale() -> GradientTransformation[Any]:
    return O.scale(0.5)


def _schedule() -> GradientTransformation[Any]:
    return O.scale_by_schedule(_decay_scale)


def _lr() -> GradientTransformation[Any]:
    return O.scale_by_learning_rate(0.1)


def _lr_schedule() -> GradientTransformation[Any]:
    return O.scale_by_learning_rate(_halving)


def _trace() -> GradientTransformation[Any]:
    return O.trace(0.9)


def _trace_nesterov() -> GradientTransformation[Any]:
    return O.trace(0.9, nesterov=True)


def _trace_dampened() -> GradientTransformation[Any]:
    return O.trace(0.9, dampening=0.5)


def _decay() -> GradientTransformation[Any]:
    return O.add_decayed_weights(0.1)


def _decay_masked() -> GradientTransformation[Any]:
    return O.add_decayed_weights(0.5, mask=O.weights_only)


def _adam_t() -> GradientTransformation[Any]:
    return O.scale_by_adam()


def _adam_eps_root() -> GradientTransformation[Any]:
    return O.scale_by_adam(eps_root=1e-8)


def _amsgrad_t() -> GradientTransformation[Any]:
    return O.scale_by_adam(amsgrad=True)


def _nadam_t() -> GradientTransformation[Any]:
    return O.scale_by_nadam()


def _radam_t() -> GradientTransformation[Any]:
    # b2 = 0.5 makes rho_t > 5 from the first step, so the rectified branch runs.
    return O.scale_by_radam(b2=0.5)


def _rms() -> GradientTransformation[Any]:
    return O.scale_by_rms()


def _rms_centered() -> GradientTransformation[Any]:
    return O.scale_by_rms(centered=True)


def _adagrad_t() -> GradientTransformation[Any]:
    return O.scale_by_adagrad(0.1)


def _adadelta_t() -> GradientTransformation[Any]:
    return O.scale_by_adadelta()


def _adamax_t() -> GradientTransformation[Any]:
    return O.scale_by_adamax()


def _adafactor_t() -> GradientTransformation[Any]:
    return O.scale_by_adafactor()


def _lion_t() -> GradientTransformation[Any]:
    return O.scale_by_lion()


def _trust() -> GradientTransformation[Any]:
    return O.scale_by_trust_ratio()


def _clip() -> GradientTransformation[Any]:
    return O.clip(0.3)


def _clip_global() -> GradientTransformation[Any]:
    return O.clip_by_global_norm(0.5)  # small enough to clip the test's gradients


def _clip_block() -> GradientTransformation[Any]:
    return O.clip_by_block_norm(0.5)


def _masked() -> GradientTransformation[Any]:
    return O.masked(O.trace(0.9), O.weights_only)


def _partition() -> GradientTransformation[Any]:
    return O.partition({"w": O.trace(0.9), "b": O.scale_by_adam()}, _label)


def _if_finite() -> GradientTransformation[Any]:
    return O.apply_if_finite(O.chain(O.trace(0.9), O.scale_by_learning_rate(0.1)))


def _accumulate() -> GradientTransformation[Any]:
    return O.accumulate_gradients(O.trace(0.9), 2)


def _ema() -> GradientTransformation[Any]:
    return O.ema_params(0.9)


def _lookahead() -> GradientTransformation[Any]:
    return O.lookahead(O.chain(O.trace(0.9), O.scale_by_learning_rate(0.1)), sync_period=2)


def _plateau() -> GradientTransformation[Any]:
    return O.reduce_on_plateau()


def _inject() -> GradientTransformation[Any]:
    return O.inject_hyperparams(O.sgd, learning_rate=0.1, momentum=0.9)


def _chain() -> GradientTransformation[Any]:
    return O.chain(O.trace(0.9), O.scale_by_learning_rate(0.1))


def _chain_masked() -> GradientTransformation[Any]:
    return O.chain(O.scale_by_adam(), O.add_decayed_weights(0.5, mask=O.weights_only))


def _named_chain() -> GradientTransformation[Any]:
    return O.named_chain(("momentum", O.trace(0.9)), ("lr", O.scale_by_learning_rate(0.1)))


def _fused() -> GradientTransformation[Any]:
    return O.fuse(O.chain(O.trace(0.9), O.scale_by_learning_rate(0.1)))


TRANSFORM_CASES = [
    TransformCase("scale", _scale, True),
    TransformCase("scale_by_schedule", _schedule, True),
    TransformCase("scale_by_learning_rate", _lr, True),
    TransformCase("scale_by_learning_rate_schedule", _lr_schedule, True),
    TransformCase("trace", _trace, True),
    TransformCase("trace_nesterov", _trace_nesterov, True),
    TransformCase("trace_dampened", _trace_dampened, True),
    TransformCase("add_decayed_weights", _decay, True),
    TransformCase("add_decayed_weights_masked", _decay_masked, False),
    TransformCase("scale_by_adam", _adam_t, True),
    TransformCase("scale_by_adam_eps_root", _adam_eps_root, True),
    TransformCase("scale_by_adam_amsgrad", _amsgrad_t, True),
    TransformCase("scale_by_nadam", _nadam_t, True),
    TransformCase("scale_by_radam", _radam_t, True),
    TransformCase("scale_by_rms", _rms, True),
    TransformCase("scale_by_rms_centered", _rms_centered, True),
    TransformCase("scale_by_adagrad", _adagrad_t, True),
    TransformCase("scale_by_adadelta", _adadelta_t, True),
    TransformCase("scale_by_adamax", _adamax_t, True),
    TransformCase("scale_by_adafactor", _adafactor_t, False),
    TransformCase("scale_by_lion", _lion_t, True),
    TransformCase("scale_by_trust_ratio", _trust, False),
    TransformCase("clip", _clip, True),
    TransformCase("clip_by_global_norm", _clip_global, False),
    TransformCase("clip_by_block_norm", _clip_block, False),
    TransformCase("masked", _masked, False),
    TransformCase("partition", _partition, False),
    TransformCase("apply_if_finite", _if_finite, False),
    TransformCase("accumulate_gradients", _accumulate, True),
    TransformCase("ema_params", _ema, True),
    TransformCase("lookahead", _lookahead, True),
    TransformCase("reduce_on_plateau", _plateau, True),
    TransformCase("inject_hyperparams", _inject, True),
    TransformCase("chain", _chain, True),
    TransformCase("chain_with_a_mask", _chain_masked, False),
    TransformCase("named_chain", _named_chain, True),
    TransformCase("fuse", _fused, True),
]
