"""Combinators: networks built from layers. The one place where cache types are erased.

A layer is generic in its cache type and invariant in it, so a combinator holding layers of
different kinds takes them as ``Layer[Any]``; what it returns is concrete (``Layer[SerialCache]``),
so no ``Any`` reaches the user.

* :func:`serial` applies layers in order (keys ``"0.w"`` or, by keyword, ``"encoder.0.w"``);
* :func:`fan_out`, :func:`parallel`, :func:`fan_in_sum`, :func:`fan_in_concat` build branches;
* :func:`residual` adds a skip connection, :func:`named` puts a sub-network under a name;
* :func:`tie` makes one parameter serve two places (a language model's embedding and output);
* :func:`bind` turns a network and its params into a plain ``x -> y`` function.

Every combinator splits ``ctx.key`` one key per child and routes ``ctx.buffers`` by key prefix, so
the training flag, randomness and running statistics reach every layer without hand wiring; and
every combinator prefixes its child's segment to the path of an error raised inside, so a failure
names the full path (``"encoder.2.dense: ..."``).
"""

from functional_dl.combinators.bind import bind
from functional_dl.combinators.branches import (
    FanInConcatCache,
    FanInSumCache,
    FanOutCache,
    ParallelCache,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    parallel,
)
from functional_dl.combinators.serial import SerialCache, serial
from functional_dl.combinators.tie import TieCache, tie
from functional_dl.combinators.wrappers import NamedCache, ResidualCache, named, residual

__all__ = [
    "FanInConcatCache",
    "FanInSumCache",
    "FanOutCache",
    "NamedCache",
    "ParallelCache",
    "ResidualCache",
    "SerialCache",
    "TieCache",
    "bind",
    "fan_in_concat",
    "fan_in_sum",
    "fan_out",
    "named",
    "parallel",
    "residual",
    "serial",
    "tie",
]
