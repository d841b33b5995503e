"""A pipeline around a bound network whose links do not line up is a type error."""

from __future__ import annotations

import functional_dl as fdl
from functional_dl import layers as L


def count_positive(y: fdl.Array) -> int:
    return len(y)


def shout(text: str) -> str:
    return text.upper()


def run(x: fdl.Array) -> str:
    net = fdl.serial(L.dense(4), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 3))
    predict = fdl.bind(net, params)
    fdl.pipe(x, predict, count_positive, shout)  # E: Cannot infer value of type parameter
    fdl.compose_left(predict, shout)  # E: Cannot infer value of type parameter
    fdl.pipe("text", predict)  # E: Argument 2 to "pipe" has incompatible type
    return fdl.pipe(x, predict, count_positive)  # E: Incompatible return value type
