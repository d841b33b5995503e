"""A recurrent layer from a cell: stacked layers, both directions, the inputs and outputs, the checks.

The contract is described in :mod:`functional_dl.layers.recurrent`; the per-direction fold over
time lives in :mod:`~functional_dl.layers.recurrent._time`. Here, for layer ``l`` and direction
``d`` (``sfx`` is ``""`` or ``"_reverse"``)::

    xw = X_l @ weight_ih_l{l}{sfx}.T + bias_ih_l{l}{sfx}          one product over all steps
    Y_l[d], final[l, d] = fold over time (xw, state0[l, d])
    X_{l+1} = concatenate(Y_l[0], Y_l[1]) along the features

and back, from ``da_x`` and ``da_h`` of every step (time-major, flattened over time and batch)::

    d weight_ih = da_x.T @ X_l        d weight_hh = da_h.T @ h_prev       (one product each)
    d bias_ih = sum(da_x)             d bias_hh = sum(da_h)
    dX_l = sum over directions of da_x @ weight_ih
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl._checks import (
    check_dy,
    check_float,
    check_keys,
    check_param,
    check_same_dtype,
    not_an_array,
    refuse_forward_keywords,
    wrong_cache,
)
from functional_dl.errors import DomainError, DTypeError, ShapeError, describe_shape
from functional_dl.initializers import uniform
from functional_dl.layers._args import flag, positive_int
from functional_dl.layers._builder import ArraySpec, ArraySpecs, build
from functional_dl.layers.recurrent._cell import Cell, State
from functional_dl.layers.recurrent._time import TimeCache, run, run_back
from functional_dl.types import EVAL, Array, BoolArray, Context, IntArray, Layer, Params, Shape

__all__ = ["RecurrentCache", "RecurrentInput", "recurrent_layer"]


class RecurrentInput(NamedTuple):
    """The inputs of a recurrent layer, in order; a plain tuple in this order works the same.

    Attributes:
        x: ``(batch, time, features)``.
        state: the initial state, ``(layers * directions, batch, hidden)`` (zeros when ``None``);
            for the LSTM the pair ``(h0, c0)``.
        lengths: ``(batch,)`` integers in ``[0, time]``: sample ``b``'s steps ``lengths[b]:``
            are padding.
        mask: ``(batch, time)`` booleans, false at padded steps (instead of ``lengths``).
    """

    x: Array
    state: Array | tuple[Array, Array] | None = None
    lengths: IntArray | None = None
    mask: BoolArray | None = None


class _Config(NamedTuple):
    """The hyperparameters every function of the layer is bound with."""

    cell: Cell
    hidden: int
    num_layers: int
    directions: int
    bias: bool
    return_state: bool


class RecurrentCache(NamedTuple):
    """What backward needs from forward."""

    inputs: tuple[Array, ...]  # per layer, its input sequence, time-major (time, batch, features)
    runs: tuple[tuple[TimeCache, ...], ...]  # per layer, per direction
    mask: BoolArray | None  # (time, batch, 1), false at padded steps; None when nothing is padded
    given: int  # 0 when x came as a bare array, else the length of the input tuple
    has_state: bool  # whether an initial state was given (it then gets a gradient)
    config: _Config  # the layer that made it (rnn, gru and lstm of any size share this type)


_SUFFIXES = ("", "_reverse")


def _names(cfg: _Config, layer: int, direction: int) -> tuple[str, str, str, str]:
    sfx = f"_l{layer}{_SUFFIXES[direction]}"
    return f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}"


def _param_shapes(cfg: _Config, features: int) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, in PyTorch's order (layer by layer, forward before reverse)."""
    rows = cfg.cell.gates * cfg.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(cfg.num_layers):
        n_in = features if layer == 0 else cfg.directions * cfg.hidden
        for d in range(cfg.directions):
            w_ih, w_hh, b_ih, b_hh = _names(cfg, layer, d)
            shapes[w_ih], shapes[w_hh] = (rows, n_in), (rows, cfg.hidden)
            if cfg.bias:
                shapes[b_ih], shapes[b_hh] = (rows,), (rows,)
    return shapes


def _state_shape(cfg: _Config, batch: int) -> tuple[int, int, int]:
    """``(layers * directions, batch, hidden)``, PyTorch's layout of ``h_0`` and ``h_n``."""
    return (cfg.num_layers * cfg.directions, batch, cfg.hidden)


# --- shapes and init -------------------------------------------------------------------------------


def _sequence_shape(in_shape: Any, name: str) -> Shape:
    seq = in_shape[0] if in_shape and isinstance(in_shape[0], tuple) else in_shape
    if not isinstance(seq, tuple) or len(seq) != 3 or not isinstance(seq[2], int):
        raise ShapeError(name, f"expected an input shape (batch, time, features), got {in_shape!r}")
    return seq


def _out_shape(cfg: _Config, seq: Shape) -> Any:
    y = (seq[0], seq[1], cfg.directions * cfg.hidden)
    if not cfg.return_state:
        return y
    state = (cfg.num_layers * cfg.directions, seq[0], cfg.hidden)
    return (y, (state, state) if cfg.cell.states == 2 else state)


def _shapes(in_shape: Any, /, *, cfg: _Config) -> tuple[Any, ArraySpecs]:
    """Every array ``U(-1/sqrt(H), 1/sqrt(H))``, as PyTorch initialises its recurrent layers."""
    seq = _sequence_shape(in_shape, cfg.cell.name)
    init = uniform(1.0 / np.sqrt(cfg.hidden))
    shapes = _param_shapes(cfg, int(seq[2]))  # type: ignore[arg-type]  # checked an int above
    return _out_shape(cfg, seq), {name: ArraySpec(shape, init) for name, shape in shapes.items()}


# --- checking the inputs ----------------------------------------------------------------------------


def _split_input(x: object, name: str) -> tuple[object, object, object, object, int]:
    if isinstance(x, np.ndarray):
        return x, None, None, None, 0
    if not isinstance(x, tuple) or not 1 <= len(x) <= 4:
        got = f"a tuple of {len(x)}" if isinstance(x, tuple) else type(x).__name__
        raise ShapeError(
            name, f"expected x or a tuple (x, state, lengths, mask) of 1 to 4 entries, got {got}"
        )
    seq, state, lengths, mask = (*x, None, None, None)[:4]
    return seq, state, lengths, mask, len(x)


def _check_sequence(seq: object, params: Params, name: str) -> Array:
    """``seq`` when it is a ``(batch, time, features)`` array (its features are checked with the params)."""
    if type(seq) is not np.ndarray or seq.ndim != 3:
        if not isinstance(seq, np.ndarray):
            raise not_an_array(seq, "the input sequence", name)
        if seq.ndim != 3:
            w = params["weight_ih_l0"]
            n_in = w.shape[1] if isinstance(w, np.ndarray) and w.ndim == 2 else "features"
            raise ShapeError(
                name, f"expected input of shape (batch, time, {n_in}), got {describe_shape(seq.shape)}"
            )
    check_float(seq, name)
    return seq


def _check_params(cfg: _Config, params: Params, features: int, seq: tuple[int, ...] | None) -> Array:
    """``weight_ih_l0``, after checking every parameter is what ``init`` makes for ``features`` inputs.

    Given the input's shape ``seq`` (forward), a first weight that is fine but for another input
    size is reported as an input that does not fit it; otherwise (backward) as the weight's fault.
    """
    name = cfg.cell.name
    shapes = iter(_param_shapes(cfg, features).items())
    key, shape = next(shapes)
    try:
        first = check_param(params, key, shape, name)
    except ShapeError:
        w = params[key]
        if seq is not None and w.ndim == 2 and w.shape[0] == shape[0]:
            raise ShapeError(
                name, f"expected input of shape (batch, time, {w.shape[1]}), got {describe_shape(seq)}"
            ) from None
        raise
    for key, shape in shapes:
        check_param(params, key, shape, name, first.dtype)
    return first


def _check_state(cfg: _Config, state: object, like: Array) -> State:
    name, expected = cfg.cell.name, _state_shape(cfg, like.shape[0])
    parts = state if cfg.cell.states == 2 else (state,)
    if not isinstance(parts, tuple) or len(parts) != cfg.cell.states:
        raise ShapeError(name, "expected the initial state as a pair (h0, c0)")
    for part in parts:
        if not isinstance(part, np.ndarray):
            raise not_an_array(part, "the initial state", name)
        if part.shape != expected:
            got = describe_shape(part.shape)
            raise ShapeError(
                name, f"expected an initial state of shape {describe_shape(expected)}, got {got}"
            )
        check_same_dtype(part, like, name, "initial state")
    return parts


def _mask_of(name: str, lengths: object, mask: object, batch: int, steps: int) -> BoolArray | None:
    """The ``(time, batch, 1)`` mask of valid steps, from ``lengths`` or a ``(batch, time)`` mask."""
    if lengths is not None and mask is not None:
        raise ShapeError(name, "give the lengths or a mask, not both")
    if lengths is not None:
        if not isinstance(lengths, np.ndarray) or lengths.dtype.kind not in "iu":
            got = lengths.dtype if isinstance(lengths, np.ndarray) else type(lengths).__name__
            raise DTypeError(name, f"expected integer lengths, got {got}")
        if lengths.shape != (batch,):
            raise ShapeError(
                name, f"expected lengths of shape ({batch},), got {describe_shape(lengths.shape)}"
            )
        if batch and (lengths.min() < 0 or lengths.max() > steps):
            raise DomainError(
                name, f"lengths must lie in [0, {steps}] (the steps), got {lengths.min()}..{lengths.max()}"
            )
        valid: BoolArray = np.arange(steps)[:, None] < lengths[None, :]
        return None if valid.all() else valid[:, :, None]
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
            raise DTypeError(name, f"expected a boolean mask, got {got}")
        if mask.shape != (batch, steps):
            raise ShapeError(
                name, f"expected a mask of shape ({batch}, {steps}), got {describe_shape(mask.shape)}"
            )
        return None if mask.all() else np.ascontiguousarray(mask.T)[:, :, None]
    return None


# --- forward ----------------------------------------------------------------------------------------


def _weights(
    cfg: _Config, params: Params, layer: int, direction: int
) -> tuple[Array, Array, Array | None, Array | None]:
    """``(weight_ih, weight_hh, input bias, recurrent bias)``, ``bias_hh`` folded in when the cell can."""
    k_ih, k_hh, k_bih, k_bhh = _names(cfg, layer, direction)
    if not cfg.bias:
        return params[k_ih], params[k_hh], None, None
    if cfg.cell.folds_bias:
        return params[k_ih], params[k_hh], params[k_bih] + params[k_bhh], None
    return params[k_ih], params[k_hh], params[k_bih], params[k_bhh]


def _project(x: Array, w: Array, b: Array | None) -> Array:
    """``x @ w.T + b`` for every step at once: ``(time, batch, n_in) -> (time, batch, rows)``."""
    steps, batch, n_in = x.shape
    xw = (x.reshape(steps * batch, n_in) @ w.T).reshape(steps, batch, w.shape[0])
    if b is not None:
        xw += b  # xw is our own fresh array
    return xw


def _forward(
    params: Params, x: Any, ctx: Context = EVAL, /, *, cfg: _Config, keys: frozenset[str], **slips: object
) -> tuple[Any, RecurrentCache]:
    name, cell = cfg.cell.name, cfg.cell
    if slips:  # forward(params, x, train=True): say what to pass instead
        refuse_forward_keywords(name, slips)
    check_keys(params, keys, name)
    seq_in, state_in, lengths, mask_in, given = _split_input(x, name)
    seq = _check_sequence(seq_in, params, name)
    batch, steps, features = seq.shape
    w = _check_params(cfg, params, features, seq.shape)
    check_same_dtype(seq, w, name)
    mask = _mask_of(name, lengths, mask_in, batch, steps)
    if state_in is None:
        zeros = np.zeros(_state_shape(cfg, batch), seq.dtype)
        state0: State = (zeros,) * cell.states
    else:
        state0 = _check_state(cfg, state_in, seq)
    layer_in = np.ascontiguousarray(seq.transpose(1, 0, 2))
    inputs, runs, finals = [], [], []
    for layer in range(cfg.num_layers):
        inputs.append(layer_in)
        outs, caches = [], []
        for d in range(cfg.directions):
            w_ih, w_hh, b_in, b_hh = _weights(cfg, params, layer, d)
            start = tuple(s[layer * cfg.directions + d] for s in state0)
            result = run(cell, _project(layer_in, w_ih, b_in), start, w_hh, b_hh, mask=mask, reverse=d == 1)
            outs.append(result.y)
            caches.append(result.cache)
            finals.append(result.final)
        layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        runs.append(tuple(caches))
    y = np.ascontiguousarray(layer_in.transpose(1, 0, 2))
    cache = RecurrentCache(tuple(inputs), tuple(runs), mask, given, state_in is not None, cfg)
    if not cfg.return_state:
        return y, cache
    final = tuple(np.stack([f[k] for f in finals]) for k in range(cell.states))
    return (y, final if cell.states == 2 else final[0]), cache


# --- backward ---------------------------------------------------------------------------------------


def _check_cache(cfg: _Config, params: Params, cache: RecurrentCache) -> None:
    """Refuse a cache this layer's forward did not make, and params that are not the forward's."""
    name = cfg.cell.name
    if type(cache) is not RecurrentCache or (cache.config is not cfg and cache.config != cfg):
        wrong_cache(cache, f"RecurrentCache of this {name}", name)
    check_keys(params, frozenset(_param_shapes(cfg, 1)), name)
    _check_params(cfg, params, cache.inputs[0].shape[2], None)


def _split_cotangent(cfg: _Config, cache: RecurrentCache, dy: Any) -> tuple[Array | None, State]:
    """``(dY, dfinal)``, checked; ``dfinal`` has zeros for an unused (or not returned) final state."""
    name, cell = cfg.cell.name, cfg.cell
    top = cache.runs[-1][0].h_prev
    steps, batch = top.shape[0], top.shape[1]
    zeros = np.zeros(_state_shape(cfg, batch), top.dtype)
    dfinal: State = (zeros,) * cell.states
    if cfg.return_state:
        if not isinstance(dy, tuple) or len(dy) != 2:
            raise ShapeError(name, "expected the gradient as a pair (dy, d final state)")
        dy, dstate = dy
        if dstate is not None:
            parts = dstate if cell.states == 2 else (dstate,)
            if not isinstance(parts, tuple) or len(parts) != cell.states:
                raise ShapeError(name, "expected the final state's gradient as a pair (dh, dc)")
            dfinal = tuple(zeros if p is None else p for p in parts)
            for p in dfinal:
                check_dy(p, zeros.shape, zeros.dtype, name, "the final state's gradient")
    if dy is not None or not cfg.return_state:  # None is an unused output of a pair only
        check_dy(dy, (batch, steps, cfg.directions * cfg.hidden), top.dtype, name)
    return dy, dfinal


def _bias_grad(da: Array) -> Array:
    out: Array = da.reshape(-1, da.shape[-1]).sum(axis=0)
    return out


def _backpropagate(
    params: Params, cache: RecurrentCache, dy: Any, cfg: _Config, *, input_grad: bool
) -> tuple[Any, Params]:
    cell, n_dir, hidden = cfg.cell, cfg.directions, cfg.hidden
    _check_cache(cfg, params, cache)
    d_top, dfinal = _split_cotangent(cfg, cache, dy)
    d_out = None if d_top is None else d_top.transpose(1, 0, 2)  # time-major view
    grads: dict[str, Array] = {}
    dstate0: list[dict[int, Array]] = [{} for _ in range(cell.states)]  # by row of the state
    for layer in range(cfg.num_layers - 1, -1, -1):
        x = cache.inputs[layer]
        steps, batch, n_in = x.shape
        d_in: Array | None = None
        for d in range(n_dir):
            k_ih, k_hh, k_bih, k_bhh = _names(cfg, layer, d)
            w_ih, w_hh = params[k_ih], params[k_hh]
            dy_d = None if d_out is None else d_out[:, :, d * hidden : (d + 1) * hidden]
            at = layer * n_dir + d
            run_cache = cache.runs[layer][d]
            da_x, da_h, ds = run_back(
                cell, run_cache, w_hh, dy_d, tuple(f[at] for f in dfinal), mask=cache.mask
            )
            for k, part in enumerate(ds):
                dstate0[k][at] = part
            gate_rows = cell.gates * hidden  # an explicit size: a reshape with -1 fails on an empty batch
            flat_x = da_x.reshape(steps * batch, gate_rows)
            grads[k_ih] = flat_x.T @ x.reshape(steps * batch, n_in)
            flat_h = run_cache.h_prev.reshape(steps * batch, hidden)
            grads[k_hh] = da_h.reshape(steps * batch, gate_rows).T @ flat_h
            if cfg.bias:
                grads[k_bih], grads[k_bhh] = _bias_grad(da_x), _bias_grad(da_h)
            if layer > 0 or input_grad:
                contribution = (flat_x @ w_ih).reshape(steps, batch, n_in)
                if d_in is None:
                    d_in = contribution
                else:
                    d_in += contribution  # d_in is our own fresh array
        d_out = d_in
    if not input_grad:
        return None, grads
    rows = [np.stack([parts[r] for r in range(cfg.num_layers * n_dir)]) for parts in dstate0]
    dx_seq = np.ascontiguousarray(d_out.transpose(1, 0, 2))  # type: ignore[union-attr]  # set by layer 0
    if cache.given == 0:
        return dx_seq, grads
    dstate = None if not cache.has_state else (tuple(rows) if cell.states == 2 else rows[0])
    return (dx_seq, dstate, None, None)[: cache.given], grads


def _backward(params: Params, cache: RecurrentCache, dy: Any, /, *, cfg: _Config) -> tuple[Any, Params]:
    return _backpropagate(params, cache, dy, cfg, input_grad=True)


def _backward_params(params: Params, cache: RecurrentCache, dy: Any, /, *, cfg: _Config) -> Params:
    return _backpropagate(params, cache, dy, cfg, input_grad=False)[1]


def recurrent_layer(
    cell: Cell,
    hidden_size: int,
    num_layers: int,
    *,
    bias: bool,
    bidirectional: bool,
    return_state: bool,
    dtype: npt.DTypeLike,
) -> Layer[RecurrentCache]:
    """The :class:`~functional_dl.types.Layer` of ``cell`` with these hyperparameters (see ``rnn``)."""
    name = cell.name
    cfg = _Config(
        cell,
        positive_int(hidden_size, "hidden_size", name),
        positive_int(num_layers, "num_layers", name),
        2 if flag(bidirectional, "bidirectional", name) else 1,
        flag(bias, "bias", name),
        flag(return_state, "return_state", name),
    )
    return build(
        name,
        _shapes,
        partial(_forward, keys=frozenset(_param_shapes(cfg, 1))),
        _backward,
        dtype=dtype,
        backward_params=_backward_params,
        tuple_input=True,
        cfg=cfg,
    )
