"""One training step as a pure function: forward, loss, backward, optimizer update.

``value_and_grad(net, loss)`` gives ``(params, x, y, ctx) -> ValueAndGrad(loss, grads, buffers, pred)``;
``train_step(net, loss, opt)`` gives ``(train_state, batch, key) -> (train_state, logs)``. Both are
built from module-level functions with ``functools.partial``, so they pickle, and neither modifies
its arguments: the same inputs give bit-identical outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from functional_dl.errors import ParamsError
from functional_dl.losses import LossFn
from functional_dl.optim.base import Optimizer, OptimizerState, check_optimizer
from functional_dl.params import freeze
from functional_dl.random import check_key
from functional_dl.types import EMPTY, EVAL, Array, Buffers, Context, Key, Layer, Params

__all__ = [
    "Batch",
    "Logs",
    "Metric",
    "Penalty",
    "TrainState",
    "TrainStepFn",
    "ValueAndGrad",
    "ValueAndGradFn",
    "init_train_state",
    "train_step",
    "value_and_grad",
]

S = TypeVar("S")

#: Targets: labels or regression values, any dtype the loss accepts.
Target = npt.NDArray[np.generic]
#: A mini-batch ``(x, y)``: inputs ``(batch, ...)`` and targets ``(batch, ...)``.
Batch = tuple[Array, Target]
#: A metric ``(pred, target) -> float`` (for example :func:`functional_dl.metrics.accuracy`).
Metric = Callable[[Array, Target], float]
#: Named scalar results of a step, an epoch or an evaluation (``{"loss": 0.31, "accuracy": 0.9}``).
Logs = Mapping[str, float]


class Penalty(Protocol):
    """``(params) -> (value, grads)``: a term added to the loss, such as an L2 penalty.

    ``grads`` holds ``d value / d params`` for the keys the penalty depends on (others may be absent).
    """

    def __call__(self, params: Params, /) -> tuple[float | Array, Params]: ...


class ValueAndGrad(NamedTuple):
    """The result of one forward and backward pass.

    Attributes:
        loss: the loss value (``reduction="mean"`` over the batch, as the loss computes it).
        grads: ``d loss / d params``, the keys and shapes of ``params``.
        buffers: the buffers after this pass (``ctx.buffers`` updated by ``net.buffers_of``).
        pred: the network's output ``(batch, ...)``, for metrics.
    """

    loss: float
    grads: Params
    buffers: Buffers
    pred: Array


class ValueAndGradFn(Protocol):
    """``(params, x, y, ctx=EVAL) -> ValueAndGrad``."""

    def __call__(self, params: Params, x: Array, y: Target, ctx: Context = ..., /) -> ValueAndGrad: ...


def _merge_buffers(old: Buffers, new: Buffers) -> Buffers:
    """The buffers after a pass: ``old`` with the entries a forward pass recomputed replaced.

    Frozen like every mapping the library hands back (the new running statistics are small, so
    making read-only copies of them costs next to nothing).
    """
    if not new:
        return old
    return freeze(new if not old or new.keys() == old.keys() else {**old, **new})


def _value_and_grad(
    params: Params, x: Array, y: Target, ctx: Context = EVAL, /, *, net: Layer[Any], loss: LossFn
) -> ValueAndGrad:
    pred, cache = net.forward(params, x, ctx)
    value, dpred = loss(pred, y)
    grads = net.param_grads(params, cache, dpred)  # the input is data: its gradient is not needed
    # A network run without buffers has none to update; skipping buffers_of saves a walk of the caches.
    buffers = _merge_buffers(ctx.buffers, net.buffers_of(cache)) if ctx.buffers else ctx.buffers
    return ValueAndGrad(float(value), grads, buffers, pred)


def value_and_grad(net: Layer[Any], loss: LossFn) -> ValueAndGradFn:
    """The loss of ``net`` on a batch and its gradient with respect to the params.

    Computes ``pred = net(params, x)``, ``(value, dpred) = loss(pred, y)`` and back-propagates
    ``dpred``. Pass ``Context(train=True, key=..., buffers=...)`` for a training-mode pass.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, losses, random, serial
        >>> net = serial(L.dense(1))
        >>> _, params = net.init(random.key(0), (None, 2))
        >>> out = value_and_grad(net, losses.mean_squared_error)(params, np.ones((4, 2), np.float32),
        ...                                                      np.zeros((4, 1), np.float32))
        >>> sorted(out.grads) == sorted(params), out.pred.shape
        (True, (4, 1))
    """
    return partial(_value_and_grad, net=net, loss=loss)


class TrainState(NamedTuple, Generic[S]):
    """Everything that changes during training, as one value (checkpoint it whole).

    Attributes:
        opt_state: the optimizer's state, which holds the current params (``.params``).
        buffers: the network's buffers (non-trained state such as running statistics); empty if
            it has none.
        step: training steps taken; with the fit key it determines each step's random key.
        epoch: complete epochs done; with the fit key it determines each epoch's shuffle.
    """

    opt_state: OptimizerState[S]
    buffers: Buffers
    step: int
    epoch: int

    @property
    def params(self) -> Params:
        """The current params (those inside the optimizer state)."""
        return self.opt_state.params


def init_train_state(opt: Optimizer[S], params: Params, buffers: Buffers = EMPTY) -> TrainState[S]:
    """The training state at step 0: ``opt.init(params)``, the given buffers, epoch 0."""
    check_optimizer(opt, "init_train_state")
    return TrainState(opt.init(params), freeze(buffers) if buffers else EMPTY, 0, 0)


class TrainStepFn(Protocol[S]):
    """``(train_state, batch, key) -> (train_state, logs)``."""

    def __call__(
        self, train_state: TrainState[S], batch: Batch, key: Key, /
    ) -> tuple[TrainState[S], Logs]: ...


def _train_step(
    train_state: TrainState[Any],
    batch: Batch,
    key: Key,
    /,
    *,
    net: Layer[Any],
    loss: LossFn,
    opt: Optimizer[Any],
    metrics: tuple[tuple[str, Metric], ...],
    penalty: Penalty | None,
    grad_fn: ValueAndGradFn | None = None,
) -> tuple[TrainState[Any], Logs]:
    if type(key) is not Key:  # an int seed, say: refused here, not only where a layer draws
        check_key(key)
    x, y = batch
    params = train_state.opt_state.params
    ctx = Context(train=True, key=key, buffers=train_state.buffers)
    if grad_fn is None:
        out = _value_and_grad(params, x, y, ctx, net=net, loss=loss)
    else:
        out = grad_fn(params, x, y, ctx)
    grads = out.grads
    extra: dict[str, float] = {}
    if penalty is not None:
        value, penalty_grads = penalty(params)
        check_penalty_grads(penalty_grads, params)
        grads = {k: g + penalty_grads[k] if k in penalty_grads else g for k, g in grads.items()}
        extra["penalty"] = float(value)
    opt_state, _ = opt.update(train_state.opt_state, grads)
    logs = {"loss": out.loss, **extra, **{name: float(fn(out.pred, y)) for name, fn in metrics}}
    return TrainState(opt_state, out.buffers, train_state.step + 1, train_state.epoch), logs


def check_penalty_grads(penalty_grads: Params, params: Params) -> None:
    """Raise :class:`ParamsError` unless every penalty gradient is a parameter's, of its shape.

    A penalty may leave out the keys it does not depend on; a key that is no parameter would
    otherwise be dropped without a word, and a wrong shape would broadcast or fail inside NumPy.
    """
    unknown = sorted(set(penalty_grads) - set(params))
    if unknown:
        raise ParamsError("penalty", f"gradients for {unknown}, which are not parameters")
    for k, g in penalty_grads.items():
        p = params[k]
        if not isinstance(g, np.ndarray) or g.shape != p.shape:
            got = g.shape if isinstance(g, np.ndarray) else type(g).__name__
            raise ParamsError("penalty", f"the gradient of {k!r} is {got}, expected shape {p.shape}")


def train_step(
    net: Layer[Any],
    loss: LossFn,
    opt: Optimizer[S],
    metrics: Mapping[str, Metric] | None = None,
    penalty: Penalty | None = None,
    *,
    grad_fn: ValueAndGradFn | None = None,
) -> TrainStepFn[S]:
    """A pure training step ``(train_state, (x, y), key) -> (train_state, logs)``.

    The forward pass runs in training mode with ``key`` (dropout masks) and the training
    state's buffers (batch norm); then ``grads`` go through ``opt.update``. ``logs`` holds
    ``"loss"`` (the data loss) and each of ``metrics`` evaluated on this batch's predictions. With
    a ``penalty`` (for example an L2 term on the weights), the objective minimised is
    ``loss + penalty(params)``: its gradient is added to ``grads`` and its value logged as
    ``"penalty"``. Nothing is modified: the returned state is new and the input state stays valid.

    Args:
        net: the network.
        loss: ``(pred, target) -> (value, dpred)``.
        opt: the optimizer.
        metrics: named ``(pred, target) -> float`` functions to report per batch.
        penalty: ``(params) -> (value, grads)`` added to the loss.
        grad_fn: what computes the loss and grads of a batch in place of
            ``value_and_grad(net, loss)``, with the same result (for example the data-parallel one
            of :mod:`functional_dl.distributed`, which sees ``(params, x, y, ctx)`` as this step does).

    Raises:
        ArgumentError: ``opt`` is not an :class:`~functional_dl.optim.Optimizer` (a bare
            gradient transformation: wrap it with ``optim.optimizer``).
        KeyTypeError: at each step, a ``key`` that is no ``Key`` (an int seed, ``None``), even
            for a network that draws nothing.
    """
    check_optimizer(opt, "train_step")
    return partial(
        _train_step,
        net=net,
        loss=loss,
        opt=opt,
        metrics=tuple((metrics or {}).items()),
        penalty=penalty,
        grad_fn=grad_fn,
    )
