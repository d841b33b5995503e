"""Looking inside a network: activations and gradients by layer, gradient health, a summary, a NaN hunt.

Every function here instruments a *copy* of the network (see :mod:`functional_dl._tap`): each
layer, combinators included, is wrapped so that its output and the gradient arriving at its output
are recorded under its *path*, the prefix its parameters carry (``"2"`` for the third layer of a
``serial``, ``"1.0"`` inside a nested one). The copy computes bit-for-bit what the network
computes; the network itself is untouched, and each call records into fresh storage, so these
functions are pure.

Combinators are walked through ``Layer.children`` and built again over the wrapped children with
``Layer.rebuild`` (the contract in :mod:`functional_dl.types`); a combinator of your own is walked
the same way when it fills those two fields, and is treated as a single leaf layer when it does not.

Example:
    >>> from functional_dl import layers as L, serial
    >>> print(summary(serial(L.dense(4), L.relu(), L.dense(1)), (None, 3)))
    path  layer   output shape  params
    ----  ------  ------------  ------
          serial  (batch, 1)    21
    0     dense   (batch, 4)    16
    1     relu    (batch, 4)    0
    2     dense   (batch, 1)    5
    total params: 21
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._tap import NonFiniteError, Recorder, instrument
from functional_dl.errors import describe_shape
from functional_dl.losses import LossFn
from functional_dl.random import key as make_key
from functional_dl.train.step import Target, value_and_grad
from functional_dl.types import EVAL, Array, Context, Key, Layer, Params, Shape

__all__ = [
    "LayerStats",
    "NonFiniteError",
    "Recording",
    "Summary",
    "SummaryRow",
    "activations",
    "debug",
    "format_stats",
    "layer_stats",
    "record",
    "summary",
]


def activations(net: Layer[Any], params: Params, x: Array, ctx: Context = EVAL) -> dict[str, Array]:
    """The output of every layer below the root, by path, in the order they ran.

    Args:
        net: the network.
        params: its params.
        x: an input batch ``(batch, ...)``.
        ctx: the forward context (training mode, key, state).

    Returns:
        ``{path: output}``; combinators appear too (a nested ``serial`` at ``"1"`` is listed with
        its last child's output). The root's output is the network's own output.
    """
    rec = Recorder()
    instrument(net, rec).forward(params, x, ctx)
    return {p: y for p, y in rec.outputs.items() if p}


class Recording(NamedTuple):
    """One forward and backward pass seen layer by layer.

    Attributes:
        loss: the loss value.
        activations: ``{path: output}`` of every layer (as :func:`activations`).
        output_grads: ``{path: d loss / d output}`` of every layer, same keys.
        grads: ``d loss / d params``, keyed like the params.
    """

    loss: float
    activations: Mapping[str, Array]
    output_grads: Mapping[str, Array]
    grads: Params


def record(
    net: Layer[Any], loss: LossFn, params: Params, x: Array, y: Target, *, ctx: Context = EVAL
) -> Recording:
    """Forward, loss and backward, recording each layer's output and the gradient at it.

    (Momentum is :func:`functional_dl.optim.trace`; this records, it does not accumulate.)
    """
    rec = Recorder()
    out = value_and_grad(instrument(net, rec), loss)(params, x, y, ctx)
    acts = {p: a for p, a in rec.outputs.items() if p}
    grads_at = {p: rec.output_grads[p] for p in acts if p in rec.output_grads}
    return Recording(out.loss, acts, grads_at, out.grads)


class LayerStats(NamedTuple):
    """Gradient health of one layer's parameters.

    Attributes:
        path: the layer's path (the parameter keys without their last segment).
        n_params: number of scalars.
        param_norm: ``||p||``, the L2 norm over all of the layer's params.
        grad_norm: ``||g||``.
        update_ratio: ``||p_new - p|| / ||p||`` after a step (``None`` if no new params given);
            around ``1e-3`` is the usual healthy range, much larger means a too-large step.
    """

    path: str
    n_params: int
    param_norm: float
    grad_norm: float
    update_ratio: float | None


def _layer_of(key: str) -> str:
    return key.rpartition(".")[0]


def _norm(arrays: Sequence[npt.NDArray[Any]]) -> float:
    return float(np.sqrt(sum(float(np.vdot(a, a).real) for a in arrays)))


def layer_stats(params: Params, grads: Params, new_params: Params | None = None) -> tuple[LayerStats, ...]:
    """Per-layer parameter norm, gradient norm and (given ``new_params``) update/param ratio.

    Layers are listed in the order of their first parameter in ``params``.
    """
    groups: dict[str, list[str]] = {}
    for k in params:
        groups.setdefault(_layer_of(k), []).append(k)
    rows = []
    for path, ks in groups.items():
        p_norm = _norm([params[k] for k in ks])
        ratio = None
        if new_params is not None:
            delta = _norm([np.asarray(new_params[k], np.float64) - params[k] for k in ks])
            ratio = delta / p_norm if p_norm > 0 else float("inf") if delta > 0 else 0.0
        rows.append(
            LayerStats(path, sum(params[k].size for k in ks), p_norm, _norm([grads[k] for k in ks]), ratio)
        )
    return tuple(rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def format_stats(rows: Sequence[LayerStats]) -> str:
    """A text table of :func:`layer_stats` rows."""
    body = [
        [
            r.path or "(root)",
            str(r.n_params),
            f"{r.param_norm:.4g}",
            f"{r.grad_norm:.4g}",
            "-" if r.update_ratio is None else f"{r.update_ratio:.3g}",
        ]
        for r in rows
    ]
    return _table(["layer", "params", "|param|", "|grad|", "|update|/|param|"], body)


def _shape_text(shape: object) -> str:
    # Branching combinators have a tuple of shapes as their output shape.
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) for s in shape):
        return "(" + ", ".join(_shape_text(s) for s in shape) + ")"
    return describe_shape(shape) if isinstance(shape, tuple) else str(shape)


class SummaryRow(NamedTuple):
    """One layer of a :class:`Summary`."""

    path: str
    name: str
    out_shape: Shape
    n_params: int
    depth: int


class Summary(NamedTuple):
    """What :func:`summary` returns; ``str(summary)`` is the table."""

    rows: tuple[SummaryRow, ...]
    total_params: int

    def __str__(self) -> str:
        body = [
            [
                "  " * (r.depth - 1) + r.path if r.depth else "",
                r.name,
                _shape_text(r.out_shape),
                str(r.n_params),
            ]
            for r in self.rows
        ]
        table = _table(["path", "layer", "output shape", "params"], body)
        return f"{table}\ntotal params: {self.total_params}"


def summary(net: Layer[Any], in_shape: Shape, key: Key | None = None) -> Summary:
    """Each layer's path, kind, output shape and parameter count, like ``torchinfo.summary``.

    Runs only ``init`` (shape inference): no data is needed. Combinator rows count the params of
    everything below them.

    Args:
        net: the network.
        in_shape: the input shape with ``None`` for the batch axis, ``(None, 30)``.
        key: the init key (parameter counts do not depend on it).
    """
    rec = Recorder()
    instrument(net, rec).init_with_buffers(key if key is not None else make_key(0), in_shape)
    rows = tuple(
        SummaryRow(path, info.name, info.out_shape, info.n_params, info.depth)
        for path, info in ((p, rec.info[p]) for p in rec.order)
    )
    return Summary(rows, rows[0].n_params if rows else 0)


def debug(net: Layer[Any]) -> Layer[Any]:
    """``net`` with a check on every layer's output (and backward results) for NaN and Inf.

    The returned network computes exactly what ``net`` computes; when a layer first produces a
    non-finite value it raises :class:`NonFiniteError` whose path names that layer
    (``"3.sigmoid: output contains NaN or Inf (its input was finite)"``). Use it while hunting a
    NaN; it costs one ``isfinite`` pass per layer output.
    """
    return instrument(net, Recorder(keep=False, check_finite=True))
