"""functional_dl: a deep-learning library in pure NumPy where everything is a pure function.

Quick tour::

    import functional_dl as fdl
    from functional_dl import layers as L

    net = fdl.serial(L.dense(20), L.relu(), L.dense(1))
    out_shape, params = net.init(fdl.random.key(0), (None, 30))
    logits, cache = net.forward(params, x)
    loss, dlogits = fdl.losses.sigmoid_binary_cross_entropy(logits, y)
    dx, grads = net.backward(params, cache, dlogits)
    opt = fdl.optim.sgd(0.05)
    state = opt.init(params)
    state, params = opt.update(state, grads)
"""

from functional_dl import (
    checkpoint,
    combinators,
    errors,
    initializers,
    inspect,
    layers,
    losses,
    metrics,
    optim,
    params,
    random,
    regularizers,
    testing,
    threads,
    train,
    types,
)
from functional_dl._fn import compose_left, pipe
from functional_dl.combinators import (
    bind,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    named,
    parallel,
    residual,
    serial,
    tie,
)
from functional_dl.types import EVAL, Array, Buffers, Context, IntArray, Key, Layer, Params, Shape

__version__ = "0.1.0"

__all__ = [
    "EVAL",
    "Array",
    "Buffers",
    "Context",
    "IntArray",
    "Key",
    "Layer",
    "Params",
    "Shape",
    "__version__",
    "bind",
    "checkpoint",
    "combinators",
    "compose_left",
    "errors",
    "fan_in_concat",
    "fan_in_sum",
    "fan_out",
    "initializers",
    "inspect",
    "layers",
    "losses",
    "metrics",
    "named",
    "optim",
    "parallel",
    "params",
    "pipe",
    "random",
    "regularizers",
    "residual",
    "serial",
    "testing",
    "threads",
    "tie",
    "train",
    "types",
]
