"""A bound network composes with pipe and compose_left, and the pipeline's type flows through."""

from __future__ import annotations

import numpy as np

import functional_dl as fdl
from functional_dl import layers as L


def double(x: fdl.Array) -> fdl.Array:
    out: fdl.Array = x * 2.0
    return out


def count_positive(y: fdl.Array) -> int:
    return len(y)


def label(n: int) -> str:
    return f"{n} positive"


def run(x: fdl.Array) -> str:
    net = fdl.serial(L.dense(4), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 3))
    predict = fdl.bind(net, params, ctx=fdl.EVAL)
    y: fdl.Array = predict(x)
    n: int = fdl.pipe(x, double, predict, count_positive)
    describe = fdl.compose_left(double, predict, count_positive, label)
    text: str = describe(x)
    return f"{y.shape} {n} {text}"


if __name__ == "__main__":
    print(run(np.ones((2, 3), np.float32)))
