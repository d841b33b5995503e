"""The optimizer contract: gradient transformations, chained, under a two-call user surface.

A :class:`GradientTransformation` is a pair of pure functions grouped so they can be named::

    init(params) -> state
    update(updates, state, params) -> (updates, state)

It maps updates to updates (gradients in, a step to add to the params out), keeping whatever it
needs in ``state``: a ``<Name>State`` NamedTuple, or :class:`EmptyState`. Transformations compose
with :func:`chain`; a named optimizer (``sgd``, ``adam``) is a chain and nothing more.

The user surface is an :class:`Optimizer` that owns the params inside its state::

    state = opt.init(params)
    state, params = opt.update(state, grads)

``OptimizerState`` holds the params, the transformation's state and the step count. Every piece of
state is made of NamedTuples, tuples, str-keyed mappings, arrays, ints, floats and bools only (no
functions: schedules and masks live in the transformation), so it checkpoints as data and
:func:`functional_dl.checkpoint.load` restores it against the template ``opt.init(params)``.
Nothing is mutated: each update returns new arrays and a new state.

Ownership
---------
Who may write into which array, in the spirit of NumPy's ``out=``:

1. A transformation writes only into arrays it allocated in this call. The updates, the state and
   the params it is given are read, never written.
2. What it returns as updates is handed on (to the next transformation, or to
   :func:`apply_updates`), so it never returns an array that it also keeps in its new state, nor a
   params array. An update it passes through unchanged is its caller's, which it has not written.

Rule 2 makes each state safe even from a downstream transformation that breaks rule 1: scaling its
incoming updates in place cannot reach a momentum buffer or a moment estimate. Both rules are
tested for every transformation and named optimizer from one registry.

Fusing
------
A transformation declares whether it is *elementwise*: whether its output at each entry depends
only on that entry (and on scalars in its state), never on keys or on a whole array. Only then may
:func:`~functional_dl.optim.fuse.fuse` run it on one flat vector per dtype, and ``fuse`` refuses
anything else when it is built. User transformations default to ``elementwise=False``, which is
always safe.

The learning rate in force is part of the state (``current_learning_rate(state)``), and
hyperparameters become changeable between steps when stored in the state by
``inject_hyperparams``; :mod:`functional_dl.optim.hyperparams` explains the design.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from functional_dl._arraylike import foreign_array
from functional_dl.errors import ArgumentError, DomainError, ParamsError
from functional_dl.params import FrozenParams, adopt, check_structure, freeze
from functional_dl.types import Array, Params

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "Optimizer",
    "OptimizerState",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateFn",
    "add_update",
    "apply_updates",
    "check_grads",
    "check_optimizer",
    "check_slots",
    "check_state",
    "moment_zeros",
    "optimizer",
    "transformation_of",
    "widened",
]

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)

_FLOAT16 = np.dtype(np.float16)

#: A learning-rate (or any hyperparameter) schedule: a plain function of the step count.
Schedule = Callable[[int], float]


class TransformInitFn(Protocol[S_co]):
    """``(params) -> state``."""

    def __call__(self, params: Params, /) -> S_co: ...


class TransformUpdateFn(Protocol[S]):
    """``(updates, state, params) -> (updates, state)``."""

    def __call__(self, updates: Params, state: S, params: Params, /) -> tuple[Params, S]: ...


class GradientTransformation(NamedTuple, Generic[S]):
    """A gradient transformation: pure ``init`` and ``update`` grouped so they can be named.

    Attributes:
        init: ``(params) -> state``.
        update: ``(updates, state, params) -> (updates, state)``; writes only into arrays it
            allocates, and returns no array that it keeps in the state (the ownership rule above).
        elementwise: ``True`` when the output at each entry depends on that entry alone (and on
            scalars), so that :func:`~functional_dl.optim.fuse.fuse` may run it on flat vectors.
    """

    init: TransformInitFn[S]
    update: TransformUpdateFn[S]
    elementwise: bool = False


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


class OptimizerState(NamedTuple, Generic[S]):
    """Everything an optimizer carries between steps.

    Attributes:
        params: the current parameters (frozen).
        inner: the state of the gradient transformation (a NamedTuple, or a tuple of them).
        step: how many updates have been applied.
    """

    params: Params
    inner: S
    step: int


class Optimizer(NamedTuple, Generic[S]):
    """The user surface: ``state = opt.init(params)``, ``state, params = opt.update(state, grads)``.

    Attributes:
        init: ``(params) -> OptimizerState``.
        update: ``(state, grads) -> (state, params)``; the new params are also ``state.params``.
        transform: the gradient transformation this optimizer applies.
    """

    init: Callable[[Params], OptimizerState[S]]
    update: Callable[[OptimizerState[S], Params], tuple[OptimizerState[S], Params]]
    transform: GradientTransformation[S]


def transformation_of(
    part: GradientTransformation[S] | Optimizer[S], where: str, index: int = 0
) -> GradientTransformation[S]:
    """``part`` as a gradient transformation: a named optimizer (``adam(1e-3)``) gives its ``transform``.

    This is what lets ``chain(clip_by_global_norm(1.0), adam(1e-3))`` work as it does in optax.

    Raises:
        DomainError: naming ``where`` and the position of ``part`` when it is neither.
    """
    if isinstance(part, Optimizer):
        return part.transform
    if isinstance(part, GradientTransformation):
        return part
    raise DomainError(
        where,
        f"part {index} is a {type(part).__name__}; expected a GradientTransformation "
        "(scale_by_adam(), trace(0.9), ...) or a named optimizer (adam(1e-3), sgd(0.1), ...)",
    )


def check_grads(grads: Params, params: Params) -> None:
    """Raise :class:`~functional_dl.errors.ParamsError` unless ``grads`` matches ``params``.

    Checks keys, shapes and dtypes; costs a few comparisons per array when all is well.
    """
    if grads.keys() != params.keys():
        check_structure(grads, params, "grads")
    for name, p in params.items():
        g = grads[name]
        if type(g) is not np.ndarray:
            foreign = foreign_array(g)
            if foreign is not None:
                raise ParamsError("grads", f"{name!r} must be a plain NumPy array, got {foreign}")
            if not isinstance(g, np.ndarray):
                raise ParamsError("grads", f"{name!r} must be a NumPy array, got {type(g).__name__}")
        if g.shape != p.shape or g.dtype != p.dtype:
            check_structure(grads, params, "grads")


def check_state(where: str, state: object, kind: type) -> None:
    """Raise :class:`~functional_dl.errors.ParamsError` unless ``state`` is a ``kind``.

    Every stateful transformation calls this first, so a state made by another transformation
    (Adam's moments handed to Lion) is refused by name instead of being read as its own. One type
    comparison per call.
    """
    if type(state) is not kind:
        raise ParamsError(
            where, f"expected the {kind.__name__} that {where}'s init made, got a {type(state).__name__}"
        )


def check_slots(where: str, field: str, slots: Mapping[str, Array], updates: Params) -> None:
    """Raise :class:`~functional_dl.errors.ParamsError` unless ``slots`` fits ``updates``.

    ``slots`` is a per-parameter mapping in a state (Adam's ``mu``, a momentum ``trace``): it must
    have the updates' keys and, key by key, their shapes; otherwise a state made for another
    parameter tree would broadcast silently or fail deep inside NumPy. A few comparisons per array.
    """
    if slots.keys() != updates.keys():
        raise ParamsError(
            where, f"state.{field} has keys {sorted(slots)}, expected the updates' keys {sorted(updates)}"
        )
    for k, g in updates.items():
        s = slots[k]
        if type(s) is not np.ndarray or s.shape != g.shape:
            got = s.shape if isinstance(s, np.ndarray) else type(s).__name__
            raise ParamsError(
                where, f"state.{field}[{k!r}] is {got}, expected shape {g.shape} (the update's)"
            )


def moment_zeros(p: Array, fill: float = 0.0) -> Array:
    """An accumulator for ``p`` filled with ``fill``: float32 for float16 params, else ``p``'s dtype.

    float16 cannot hold an adaptive optimizer's second moments (``g^2`` of a small gradient and
    ``eps = 1e-8`` both underflow to 0, and ``0 / 0`` is NaN), so the moments of float16 params
    are kept in float32; the update is cast back to float16 when it is applied.
    """
    dtype = np.float32 if p.dtype == _FLOAT16 else p.dtype
    return np.full(p.shape, fill, dtype)


def widened(g: Array) -> Array:
    """``g`` in float32 when it is float16 (to meet float32 moments), else ``g`` itself."""
    return g.astype(np.float32) if g.dtype == _FLOAT16 else g


def add_update(p: Array, u: Array, out: Array | None = None) -> Array:
    """``p + u`` in ``p``'s dtype (an update of a wider dtype is cast back), into ``out`` if given."""
    # The plain ``+`` is the common case and dispatches faster than np.add with dtype/casting.
    if u.dtype == p.dtype:
        return p + u if out is None else np.add(p, u, out=out)
    return np.add(p, u, out=out, dtype=p.dtype, casting="same_kind")


def apply_updates(params: Params, updates: Params) -> FrozenParams:
    """``params + updates`` key by key, as new read-only arrays of the params' dtypes.

    An update of a wider dtype is cast back to the parameter's dtype (float32 params stay float32).
    """
    out = {}
    for name, p in params.items():
        u = updates[name]
        # add_update's common case inline: one call fewer per key on every step.
        out[name] = p + u if u.dtype == p.dtype else add_update(p, u)
    return adopt(out)


def _optimizer_init(transform: GradientTransformation[S], params: Params, /) -> OptimizerState[S]:
    frozen = params if isinstance(params, FrozenParams) else freeze(params)
    scalars = sorted(k for k, p in frozen.items() if p.ndim == 0)
    if scalars:
        # Transformations update in place the arrays they allocated, which NumPy scalars (what
        # arithmetic on 0-d arrays returns) do not allow; layers never make 0-d parameters.
        raise ParamsError("params", f"{scalars} are 0-d: store a scalar parameter with shape (1,)")
    return OptimizerState(frozen, transform.init(frozen), 0)


def _optimizer_update(
    transform: GradientTransformation[S],
    applied: TransformUpdateFn[S] | None,
    state: OptimizerState[S],
    grads: Params,
    /,
) -> tuple[OptimizerState[S], Params]:
    if not isinstance(state, OptimizerState):
        raise ParamsError(
            "optimizer.update",
            f"expected (state, grads) with the OptimizerState from opt.init, got a {type(state).__name__}",
        )
    params = state.params
    check_grads(grads, params)
    if applied is None:
        updates, inner = transform.update(grads, state.inner, params)
        new_params = apply_updates(params, updates)
    else:
        fresh, inner = applied(grads, state.inner, params)
        new_params = adopt(dict(fresh))
    return OptimizerState(new_params, inner, state.step + 1), new_params


def check_optimizer(opt: object, where: str) -> None:
    """Raise :class:`ArgumentError` unless ``opt`` is an :class:`Optimizer`.

    A bare :class:`GradientTransformation` (``chain(...)``, ``scale_by_adam()``) has ``init`` and
    ``update`` too, so without this check it is accepted and fails at the first step with an
    ``AttributeError`` from deep inside the loop; the message says how to wrap it.
    """
    if isinstance(opt, Optimizer):
        return
    if isinstance(opt, GradientTransformation):
        raise ArgumentError(
            where,
            "expected an Optimizer, got a GradientTransformation (an optax-style transform such as "
            "chain(...)); wrap it: functional_dl.optim.optimizer(transform)",
        )
    kind = type(opt).__name__
    raise ArgumentError(where, f"expected an Optimizer (e.g. functional_dl.optim.adam(1e-3)), got {kind}")


def optimizer(transform: GradientTransformation[S]) -> Optimizer[S]:
    """The user surface over a gradient transformation whose updates are *added* to the params.

    Example:
        >>> import numpy as np
        >>> from functional_dl.optim import sgd
        >>> opt = sgd(0.1)
        >>> state = opt.init({"w": np.array([1.0, 2.0])})
        >>> state, params = opt.update(state, {"w": np.array([1.0, -1.0])})
        >>> params["w"], state.step
        (array([0.9, 2.1]), 1)

    Raises:
        DomainError: when ``transform`` is neither a transformation nor a named optimizer (whose
            transformation is then used).
    """
    return _optimizer_applying(transformation_of(transform, "optimizer"), None)


def _optimizer_applying(
    transform: GradientTransformation[S], applied: TransformUpdateFn[S] | None
) -> Optimizer[S]:
    """:func:`optimizer`, with ``applied`` (if given) computing the new params in one go.

    ``applied`` is ``(grads, state, params) -> (new params, state)``: ``transform.update`` and
    :func:`apply_updates` in one function, for a transformation that can add its updates to the
    params as it computes them (the fused named optimizers, :mod:`functional_dl.optim.fuse`). It
    must give the bits of the two calls and return new arrays only, which it hands over (they are
    frozen in place).
    """
    return Optimizer(
        init=partial(_optimizer_init, transform),
        update=partial(_optimizer_update, transform, applied),
        transform=transform,
    )
