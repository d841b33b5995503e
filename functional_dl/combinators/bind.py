"""``bind``: a network with its params (and context) bound is a plain ``x -> y`` function.

Inference and preprocessing then compose like any other functions, with
:func:`functional_dl.pipe` and :func:`functional_dl.compose_left`::

    predict = compose_left(standardise, bind(net, params), softmax_probabilities)
    probabilities = predict(x)

The bound function is a ``functools.partial`` of a module-level function, so it pickles (to a
worker process, say) as long as the network does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from functional_dl.errors import ArgumentError, ParamsError
from functional_dl.types import EVAL, Array, Context, Layer, Params

__all__ = ["bind"]


def _apply(net: Layer[Any], params: Params, ctx: Context, x: Array, /, **slips: object) -> Array:
    if slips:  # predict(x, train=True): the mode was bound with the params
        given = ", ".join(f"{name}={value!r}" for name, value in slips.items())
        raise ArgumentError(
            "bind",
            f"the bound function takes the input only, got {given}; its context is bound with the"
            " params: bind(net, params, ctx=fdl.Context(...))",
        )
    y, _ = net.forward(params, x, ctx)
    return y


def bind(net: Layer[Any], params: Params, *, ctx: Context = EVAL) -> Callable[[Array], Array]:
    """``x -> net.forward(params, x, ctx)[0]``: the network as a function of its input alone.

    Args:
        net: the network.
        params: its params (not copied: they are read-only mappings).
        ctx: the forward context; the default :data:`~functional_dl.types.EVAL` is evaluation
            mode. Pass ``Context(buffers=buffers)`` for a network with buffers (batch norm).

    Returns:
        A picklable function from an input batch ``(batch, ...)`` to the output ``(batch, ...)``.
        It returns the output only: the cache and any new buffers are dropped, so it is for
        inference, not training.

    Raises:
        ArgumentError: ``net`` is not a :class:`~functional_dl.types.Layer` or ``ctx`` not a
            :class:`~functional_dl.types.Context`; and, from the bound function, a keyword
            (``predict(x, train=True)``): the context is bound here.
        ParamsError: ``params`` is not a mapping.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random, serial
        >>> net = serial(L.dense(2), L.relu())
        >>> _, params = net.init(random.key(0), (None, 3))
        >>> predict = bind(net, params)
        >>> predict(np.ones((4, 3), np.float32)).shape
        (4, 2)
    """
    if not isinstance(net, Layer):
        raise ArgumentError("bind", f"net must be a Layer, got {type(net).__name__}")
    if not isinstance(params, Mapping):
        raise ParamsError(net.name, f"bind: params must be a mapping of arrays, got {type(params).__name__}")
    if not isinstance(ctx, Context):
        raise ArgumentError("bind", f"ctx must be a Context, got {type(ctx).__name__}")
    return partial(_apply, net, params, ctx)
