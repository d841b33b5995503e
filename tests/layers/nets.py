"""Nested networks for the registry: every combinator inside another, with stateful layers inside.

Each builder is a module-level function so the networks pickle. Keys are documented next to each
(``test_combinators.py`` checks them exactly).
"""

from __future__ import annotations

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.combinators import (
    FanInConcatCache,
    NamedCache,
    SerialCache,
    fan_in_concat,
    fan_in_sum,
    fan_out,
    named,
    parallel,
    residual,
)


def residual_mlp() -> fdl.Layer[SerialCache]:
    """Keys ``0.w 0.b 1.0.w 1.0.b 2.0.w 2.0.b``; the residual blocks are transparent."""
    return fdl.serial(
        L.dense(4),
        residual(fdl.serial(L.dense(4), L.tanh())),
        residual(fdl.serial(L.dense(4), L.sigmoid())),
    )


def branches_concat() -> fdl.Layer[FanInConcatCache]:
    """A concat of two branches; keys ``1.0.w 1.0.b 1.1.0.w 1.1.0.b 1.1.1.w 1.1.1.b``, output width 5."""
    return fdl.serial(  # type: ignore[return-value]  # fdl.serial's cache, annotated loosely
        fan_out(2),
        parallel(L.dense(2), fdl.serial(L.dense(3), L.tanh())),
        fan_in_concat(-1),
    )


def branches_sum() -> fdl.Layer[SerialCache]:
    """Three branches summed: identity, dense, and a residual dense; keys under ``1.1`` and ``1.2``."""
    return fdl.serial(
        fan_out(3),
        parallel(L.identity(), L.dense(4), residual(L.dense(4))),
        fan_in_sum(),
        L.dense(2),
    )


def encoder_decoder() -> fdl.Layer[SerialCache]:
    """Named children: keys ``encoder.0.w encoder.2.w decoder.w`` (and biases)."""
    return fdl.serial(
        encoder=fdl.serial(L.dense(4), L.tanh(), L.dense(3)),
        decoder=L.dense(2),
    )


def named_block() -> fdl.Layer[NamedCache]:
    """``named`` around a serial: keys ``block.0.w block.0.b``."""
    return named("block", fdl.serial(L.dense(3), L.sigmoid()))


def train_everything() -> fdl.Layer[SerialCache]:
    """Dropout and batch norm inside residual, parallel and named children, for training mode.

    Buffers keys: ``0.1.running_mean``, ``1.1.0.0.running_mean``, ``2.head.1.running_mean`` (and the
    variances). Batch norm's ``eps`` is large here: three batch norms in a row on a batch whose
    values are all equal multiply ``1 / sqrt(eps)`` three times, and with the default ``eps`` the
    network is too ill-conditioned for finite differences in float64 (the single-layer cases
    cover the default).
    """
    return fdl.serial(
        residual(fdl.serial(L.dense(3), L.batch_norm1d(eps=0.1), L.tanh(), L.dropout(0.25))),
        fdl.serial(
            fan_out(2),
            parallel(fdl.serial(L.batch_norm1d(eps=0.1), L.dropout(0.5)), L.dropout(0.5)),
            fan_in_sum(),
        ),
        named("head", fdl.serial(L.dense(2), L.batch_norm1d(eps=0.1))),
    )
