"""The contracts every part of the library is written against.

Everything here is data or a type: aliases for arrays, shapes, parameter mappings and keys, and the
two contracts, :class:`Layer` and (in :mod:`functional_dl.optim.base`) the gradient transformation.
A contract is a few pure functions grouped in a ``NamedTuple`` so they can be referred to by name; it
has no hidden state and no behaviour of its own.

The layer contract
------------------
A layer is a :class:`Layer` of pure functions::

    init_with_buffers(key, in_shape) -> (out_shape, params, buffers)
    forward(params, x, ctx=EVAL)     -> (y, cache)
    backward(params, cache, dy)      -> (dx, grads)
    buffers_of(cache)                -> buffers

``Layer.init(key, in_shape) -> (out_shape, params)`` is the common case, for networks that carry no
buffers (non-trained state). ``in_shape`` uses ``None`` for the batch axis: ``(None, 30)``.

``grads`` has exactly the keys and shapes of ``params``; ``dx`` has the shape of ``x``.

Design: keys, modes and buffers
-------------------------------
Dropout needs a key at training time and batch norm carries running statistics that are not
trained (PyTorch calls these *buffers*, and so do we). Both are *explicit values*, never hidden
attributes, and they travel together in one :class:`Context` (``train``, ``key``, ``buffers``)
that ``forward`` takes as its third argument. ``Context()`` (the default, :data:`EVAL`) means
evaluation mode, no randomness, no buffers.

* Buffers are a flat mapping with dotted keys, exactly like ``params`` but kept apart from
  them, so optimizers and weight decay never see them (Flax's ``params``/``batch_stats`` split).
  They are created together with the params by ``init_with_buffers``: one pass over the network infers every
  shape once.
* The *new* buffers computed in a training step are a pure function of the forward cache, read with
  ``layer.buffers_of(cache)``. So ``forward`` keeps the ``(y, cache)`` form of every other layer, and
  a layer without buffers pays nothing (``buffers_of`` returns the empty mapping).
* Combinators split ``ctx.key`` one child key per child (:func:`functional_dl.random.split`) and
  route ``ctx.buffers`` by key prefix, so the user threads one context through the whole network.
  Layers whose forward never looks at ``ctx`` say so (``reads_context=False``); a ``serial`` of
  only such layers then passes the context through instead of deriving one per child, which is
  most of a small network's per-call overhead in training mode. Child ``i``'s key is still
  ``split(key, n)[i]``, so this changes no number.

Gradients of the input
----------------------
``backward`` returns ``dx`` because a layer inside a network must pass it on. Training needs only
the params' gradients, and the first layer's ``dx`` (a whole matrix product for a dense layer) is
thrown away, so a layer may also provide ``backward_params(params, cache, dy) -> grads``.
:meth:`Layer.param_grads` uses it when present and ``backward(...)[1]`` otherwise, with the same
result bit for bit; ``serial``, ``named`` and ``residual`` pass it down to their first child.

We chose this over Haiku's ``apply(params, state, rng, x) -> (y, state)`` because every layer here
already returns a cache for its backward pass; putting the new buffers in that cache keeps a single
forward signature for layers with and without buffers alike.

Children: what a combinator is made of
---------------------------------------
A combinator says what it is made of as data: ``Layer.children`` is a tuple of :class:`Child`
``(segment, layer)``, in order, where ``segment`` is the prefix the child's parameter keys carry
inside the combinator (``"0"`` for the first layer of a ``serial``, ``"encoder"`` for a named child,
``""`` when the child's keys are not prefixed, as inside ``residual``). ``Layer.rebuild`` is a
picklable ``(layers) -> Layer`` that builds the same combinator again over replacement children,
given in the order of ``children``. Inspection (:mod:`functional_dl.inspect`) walks ``children`` and
calls ``rebuild`` to wrap every layer of a network; nothing reads a combinator's ``functools.partial``
arguments.

A combinator of your own takes part by filling both fields::

    def pair(first, second):   # keys "first.w", "second.w", ...
        return Layer(
            init_with_buffers=..., forward=..., backward=...,
            children=(Child("first", first), Child("second", second)),
            rebuild=partial(_pair_rebuild),   # (layers) -> pair(*layers)
        )

A layer with no ``children`` is a leaf: inspection and summaries treat it as one unit, whatever it
holds inside (a combinator written with closures or without these fields shows as a single row).
A layer with ``children`` must have a ``rebuild``.

Several inputs, several outputs
------------------------------
Some layers take more than one input (a recurrent layer: the sequence, an initial state, the
lengths; attention: queries, keys and values, a mask) or return more than one output (the output
sequence and the final state). They take and return **tuples of arrays**, one entry per input or
output in a documented order, as the branching combinators already do (``fan_out`` makes a tuple,
``parallel`` maps one, ``fan_in_*`` consumes one), and the ``init`` shape is the tuple of the
entries' shapes in the same positions (``((None, 40, 1), (None, 2, 6))``). A :class:`~typing.NamedTuple`
may name the entries: it is a tuple, so everything below holds for it too. The rules:

* **Absent optional inputs are** ``None``: ``(x, None, lengths)`` has no initial state. A layer
  may also accept a bare array for its first input alone (``x`` meaning ``(x,)``).
* **Integer and boolean inputs have no gradient** (ids, lengths, masks). ``backward`` returns
  ``dx`` with the structure of ``x``: an array of the input's shape and dtype for every float
  entry, and ``None`` for every integer, boolean or absent entry, as PyTorch gives ``None`` for
  such inputs' ``.grad``. Zeros would be a lie (the function is not differentiable there) and
  would cost a full array for every mask.
* **An unused output's cotangent may be** ``None``: ``backward(params, cache, (dy, None))`` means
  the second output does not reach the loss, exactly as if its cotangent were zeros.
* **Tuples nest**: ``parallel`` over layers with several outputs gives a tuple of tuples. The
  type :data:`Flow` is the recursive form; :mod:`functional_dl.testing` checks the gradient of
  every float entry however deep, and ``fan_out`` adds tuple gradients entry by entry (``None``
  counting as zero).

We chose plain tuples over a dedicated input record (Haiku's keyword arguments, a
``SequenceBatch`` class) because the combinators already carry tuples between branches, so the
same ``serial``/``parallel`` plumbing routes multi-input layers with no special case, and a
tuple is a value that pickles, compares and unpacks like any other.

Statically, a layer with tuple inputs or outputs is typed like the branching combinators: its
``forward`` is a :class:`ForwardFn` (``x: Array``), while at run time ``x`` is a tuple. Typing it
exactly needs ``Layer`` to be generic in its input and output types with defaults (PEP 696,
``typing.TypeVar(default=...)``, Python 3.13), so that ``Layer[DenseCache]`` keeps meaning a
one-array layer; until then a layer whose own input and output are single arrays (a recurrent
layer that returns only its output sequence) is exactly typed, and the tuple forms are not.

Names: *buffers* are always the network's non-trained arrays; *state* is always the carry of an
``init``/``update`` pair (an optimizer's or a callback's state); a *training state*
(:class:`~functional_dl.train.TrainState`) holds the optimizer state, the buffers and the counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, NamedTuple, Protocol, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "EMPTY",
    "EVAL",
    "Array",
    "BackwardFn",
    "BackwardParamsFn",
    "BoolArray",
    "Buffers",
    "BuffersOfFn",
    "Child",
    "Context",
    "Flow",
    "FlowShape",
    "ForwardFn",
    "InitFn",
    "IntArray",
    "Key",
    "Layer",
    "Params",
    "ParamsInitFn",
    "RebuildFn",
    "Shape",
    "no_buffers",
    "without_buffers",
]

#: A floating-point NumPy array (float32 or float64 in practice).
Array: TypeAlias = npt.NDArray[np.floating[Any]]
#: An integer NumPy array (class labels, indices).
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
#: A boolean NumPy array (masks).
BoolArray: TypeAlias = npt.NDArray[np.bool_]
#: An array shape; ``None`` marks the batch axis, which is unknown until data arrives.
Shape: TypeAlias = tuple[int | None, ...]
#: Trained parameters: a flat mapping from dotted names (``"0.w"``, ``"encoder.1.b"``) to arrays.
Params: TypeAlias = Mapping[str, Array]
#: Buffers: non-trained arrays (running statistics), same form as :data:`Params`, kept apart from them.
Buffers: TypeAlias = Mapping[str, Array]

#: What flows along an edge of a network: one array, or a tuple for several inputs or outputs,
#: whose entries are float arrays, integer or boolean arrays (no gradient), ``None`` (an absent
#: optional input, or an unused output's cotangent), or tuples again (see the module docstring).
Flow: TypeAlias = "Array | IntArray | BoolArray | tuple[Flow | None, ...]"
#: The ``init`` shape of a :data:`Flow`: a :data:`Shape`, or a tuple of them in the same positions.
FlowShape: TypeAlias = "Shape | tuple[FlowShape | None, ...]"

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)
C_contra = TypeVar("C_contra", contravariant=True)

#: The empty parameter or buffer mapping (shared; mappings are never mutated).
EMPTY: Mapping[str, Array] = {}


class Key(NamedTuple):
    """A pure random key: the entropy of a ``numpy.random.SeedSequence`` and a spawn path.

    Keys are plain values: hashable, picklable and equal across processes. Make one with
    :func:`functional_dl.random.key` and derive children with :func:`functional_dl.random.split`.
    """

    entropy: int
    path: tuple[int, ...] = ()


class Context(NamedTuple):
    """What a forward pass needs besides params and input.

    Attributes:
        train: training mode (dropout active, batch norm uses batch statistics).
        key: randomness for this call; required by layers that sample (dropout) in training mode.
        buffers: non-trained arrays (running statistics), a flat mapping with dotted keys.
    """

    train: bool = False
    key: Key | None = None
    buffers: Buffers = EMPTY


#: Evaluation mode with no randomness and no buffers: the default context.
EVAL = Context()


class InitFn(Protocol):
    """``(key, in_shape) -> (out_shape, params, buffers)``: build a layer's parameters and buffers."""

    def __call__(self, key: Key, in_shape: Shape, /) -> tuple[Shape, Params, Buffers]: ...


class ParamsInitFn(Protocol):
    """``(key, in_shape) -> (out_shape, params)``: the init of a layer with no buffers."""

    def __call__(self, key: Key, in_shape: Shape, /) -> tuple[Shape, Params]: ...


class ForwardFn(Protocol[C_co]):
    """``(params, x, ctx=EVAL) -> (y, cache)``: a pure forward pass."""

    def __call__(self, params: Params, x: Array, ctx: Context = ..., /) -> tuple[Array, C_co]: ...


class BackwardFn(Protocol[C_contra]):
    """``(params, cache, dy) -> (dx, grads)``: a pure vector-Jacobian product."""

    def __call__(self, params: Params, cache: C_contra, dy: Array, /) -> tuple[Array, Params]: ...


class BuffersOfFn(Protocol[C_contra]):
    """``(cache) -> buffers``: the buffers after a forward pass."""

    def __call__(self, cache: C_contra, /) -> Buffers: ...


class BackwardParamsFn(Protocol[C_contra]):
    """``(params, cache, dy) -> grads``: ``backward`` without the gradient of the input."""

    def __call__(self, params: Params, cache: C_contra, dy: Array, /) -> Params: ...


class RebuildFn(Protocol):
    """``(layers) -> layer``: the same combinator built again over replacement children.

    ``layers`` are given in the order of the combinator's ``children``, one for each.
    """

    def __call__(self, layers: tuple[Layer[Any], ...], /) -> Layer[Any]: ...


@dataclass(frozen=True, slots=True)
class Child:
    """One child of a combinator: the layer and the key segment its parameters carry.

    A frozen dataclass rather than a ``NamedTuple``: a tuple type carries its fields' types, so
    ``Layer[SerialCache]`` would then contain this ``Layer[Any]`` and a user's script checked with
    ``--disallow-any-expr`` would see ``Any`` in every network it builds.

    Attributes:
        segment: the prefix of the child's keys inside the combinator (``"0"``, ``"encoder"``),
            or ``""`` when its keys are the combinator's own (the layer inside ``residual``).
        layer: the child layer.
    """

    segment: str
    layer: Layer[Any]


def no_buffers(cache: object, /) -> Buffers:
    """``buffers_of`` for layers without buffers: always the empty mapping."""
    return EMPTY


class Layer(NamedTuple, Generic[C]):
    """A layer: pure functions grouped in a ``NamedTuple`` so they can be referred to by name.

    ``C`` is the type of the cache that ``forward`` returns and ``backward`` consumes; a layer is
    invariant in it, so a cache of one layer cannot be passed to another's backward.

    Attributes:
        init_with_buffers: ``(key, in_shape) -> (out_shape, params, buffers)``.
        forward: ``(params, x, ctx=EVAL) -> (y, cache)``; returns new arrays, modifies nothing.
        backward: ``(params, cache, dy) -> (dx, grads)``; ``grads`` has the keys and shapes of
            ``params``, ``dx`` the shape of ``x``.
        buffers_of: ``(cache) -> buffers``, the buffers after the forward pass that made
            ``cache`` (the empty mapping for layers without buffers).
        name: the layer's kind, used in error messages (``"dense"``).
        reads_context: ``False`` when ``forward`` ignores ``ctx`` (no training-mode behaviour, no
            randomness, no buffers): combinators then hand it the context unchanged instead of
            deriving a child key and buffers for it. ``True`` (the safe default) otherwise.
        backward_params: optional ``(params, cache, dy) -> grads`` that skips ``dx``; see
            :meth:`param_grads`.
        children: a combinator's children with their key segments, in order; ``()`` for a leaf.
        rebuild: for a combinator, ``(layers) -> layer`` building it again over replacement
            children (in the order of ``children``); ``None`` for a leaf.
    """

    init_with_buffers: InitFn
    forward: ForwardFn[C]
    backward: BackwardFn[C]
    buffers_of: BuffersOfFn[C] = no_buffers
    name: str = "layer"
    reads_context: bool = True
    backward_params: BackwardParamsFn[C] | None = None
    children: tuple[Child, ...] = ()
    rebuild: RebuildFn | None = None

    def init(self, key: Key, in_shape: Shape) -> tuple[Shape, Params]:
        """``(key, in_shape) -> (out_shape, params)``, dropping any buffers."""
        out_shape, params, _ = self.init_with_buffers(key, in_shape)
        return out_shape, params

    def param_grads(self, params: Params, cache: C, dy: Array) -> Params:
        """``grads`` of ``backward(params, cache, dy)``, without computing ``dx`` where possible.

        The gradient with respect to the network's *input* is never needed in training (the input
        is data), and for a first dense layer it is a whole matrix product. Layers that can skip it
        provide ``backward_params``; for the others this is ``backward(...)[1]``. Either way the
        result is the same, bit for bit (the layer contract tests check it).
        """
        if self.backward_params is None:
            return self.backward(params, cache, dy)[1]
        return self.backward_params(params, cache, dy)


def _init_without_buffers(init: ParamsInitFn, key: Key, in_shape: Shape, /) -> tuple[Shape, Params, Buffers]:
    out_shape, params = init(key, in_shape)
    return out_shape, params, EMPTY


def without_buffers(init: ParamsInitFn) -> InitFn:
    """Lift ``(key, in_shape) -> (out_shape, params)`` to the ``init_with_buffers`` form.

    Example:
        >>> from functional_dl.types import without_buffers, Key
        >>> def init(key, in_shape):
        ...     return in_shape, {}
        >>> without_buffers(init)(Key(0), (None, 3))
        ((None, 3), {}, {})
    """
    return partial(_init_without_buffers, init)
