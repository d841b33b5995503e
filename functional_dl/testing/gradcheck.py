"""Finite-difference gradient checks for layers and losses, in float64.

For a layer ``y = f(params, x)`` we check the vector-Jacobian products that ``backward`` returns.
A fixed random cotangent ``r`` (same shape as ``y``) turns the layer into the scalar
``L = sum(r * f(params, x))``; then ``backward(params, cache, r)`` must equal ``dL/dx`` and
``dL/dparams``, which we estimate by central differences::

    dL/dv[i] ~= (L(v + eps e_i) - L(v - eps e_i)) / (2 eps)

with a truncation error of ``O(eps^2)`` and a rounding error of ``O(1e-16 / eps)``; ``eps = 1e-6``
balances them at about ``1e-10`` relative to the scale of ``L``. An entry passes when
``|analytic - numeric| <= atol + rtol * |numeric|`` (defaults ``rtol = 1e-6``, ``atol = 1e-8``).

Functions with kinks (``relu`` at 0, ``max_pool`` at ties) are only differentiable away from the
kink; test them on inputs kept at least ``10 * eps`` from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from functional_dl import random
from functional_dl._flow import (
    Leaf,
    Path,
    differentiable,
    leaf_at,
    leaf_name,
    leaves,
    map_leaves,
    replace_leaf,
)
from functional_dl.errors import ShapeError
from functional_dl.params import cast
from functional_dl.types import EVAL, Array, Context, Flow, Key, Layer, Params

__all__ = ["GradientReport", "check_gradients", "check_loss_gradients", "numerical_gradient"]


class GradientReport(NamedTuple):
    """The outcome of a gradient check.

    Attributes:
        passed: every entry was within tolerance.
        worst: the name of the input with the worst entry (``"x"``, a parameter key, or ``"pred"``).
        position: the index of that entry.
        analytic: the gradient computed by the code under test at that entry.
        numeric: the finite-difference estimate there.
        error: ``|analytic - numeric| / (atol + rtol * |numeric|)`` there (passes when <= 1).
        checked: how many entries were compared.
    """

    passed: bool
    worst: str
    position: tuple[int, ...]
    analytic: float
    numeric: float
    error: float
    checked: int

    def describe(self) -> str:
        """A one-line summary naming the worst entry."""
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"gradient check {verdict} over {self.checked} entries; worst {self.worst}{list(self.position)}: "
            f"analytic {self.analytic:.12g} vs numeric {self.numeric:.12g} (error ratio {self.error:.3g})"
        )


def numerical_gradient(f: Callable[[Array], float], v: Array, eps: float = 1e-6) -> Array:
    """Central-difference gradient of the scalar function ``f`` at ``v`` (float64, one entry at a time)."""
    grad = np.zeros(v.shape, dtype=np.float64)
    probe = np.array(v, dtype=np.float64)
    flat = probe.reshape(-1)
    out = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = f(probe)
        flat[i] = orig - eps
        minus = f(probe)
        flat[i] = orig
        out[i] = (plus - minus) / (2 * eps)
    return grad


def _compare(entries: Sequence[tuple[str, Array, Array]], rtol: float, atol: float) -> GradientReport:
    worst = GradientReport(True, "", (), 0.0, 0.0, -1.0, 0)
    checked = 0
    for name, analytic, numeric in entries:
        if analytic.shape != numeric.shape:
            raise AssertionError(f"gradient of {name} has shape {analytic.shape}, expected {numeric.shape}")
        checked += analytic.size
        if analytic.size == 0:
            continue
        ratio = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
        ratio = np.where(np.isfinite(analytic), ratio, np.inf)
        idx = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if float(ratio[idx]) > worst.error:
            worst = GradientReport(
                True,
                name,
                tuple(int(i) for i in idx),
                float(analytic[idx]),
                float(numeric[idx]),
                float(ratio[idx]),
                0,
            )
    return worst._replace(passed=worst.error <= 1.0, checked=checked)


def _float64_leaf(path: Path, v: Leaf) -> Leaf:
    if isinstance(v, np.ndarray) and v.dtype.kind in "biu":
        return v
    return None if v is None else np.array(v, dtype=np.float64)


def _as_float64(x: object) -> Flow | None:
    """Float entries as float64 copies; integer and boolean entries (ids, masks) and ``None`` kept."""
    if not isinstance(x, tuple):
        return _float64_leaf((), x)  # type: ignore[arg-type]  # any array-like
    return map_leaves(_float64_leaf, x)


def _cotangent(y: Flow, key: Key) -> Flow | None:
    """A random float64 cotangent for every float output (``None`` for integer ones)."""
    if not isinstance(y, tuple):
        return random.normal(key, y.shape, np.float64)
    paths = [path for path, _ in leaves(y)]
    keys = dict(zip(paths, random.split(key, len(paths)), strict=True))

    def draw(path: Path, v: Leaf) -> Leaf:
        return random.normal(keys[path], v.shape, np.float64) if differentiable(v) else None

    return map_leaves(draw, y)


def _dot(r: Flow | None, y: Flow) -> float:
    """``sum(r * y)`` over every float output."""
    total = 0.0
    for path, rv in leaves(r):
        if rv is not None:
            total += float(np.sum(rv * np.asarray(leaf_at(y, path))))
    return total


def _dx_entry(dx: object, path: Path) -> object:
    try:
        return leaf_at(dx, path)  # type: ignore[arg-type]  # whatever backward returned
    except ShapeError:
        raise AssertionError(f"dx has no entry for {leaf_name(path)}") from None


def _input_gradient(dx: object, path: Path) -> Array:
    g = _dx_entry(dx, path)
    if not isinstance(g, np.ndarray):
        raise AssertionError(f"dx for the float input {leaf_name(path)} is {type(g).__name__}, not an array")
    return np.asarray(g, dtype=np.float64)


def _check_no_gradient(dx: object, path: Path) -> None:
    g = _dx_entry(dx, path)
    if g is not None:
        raise AssertionError(
            f"dx for {leaf_name(path)} (an integer, boolean or absent input) must be None, "
            f"got {type(g).__name__}"
        )


def check_gradients(
    layer: Layer[Any],
    params: Params,
    x: npt.ArrayLike | Flow,
    *,
    ctx: Context = EVAL,
    key: Key | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    raise_on_failure: bool = True,
) -> GradientReport:
    """Check a layer's ``backward`` against central finite differences in float64.

    Params and input are cast to float64 first. The cotangent ``r`` is drawn from ``key``
    (default ``random.key(0)``), so a check is reproducible.

    An integer or boolean array input (ids, a mask) is kept as it is and must get ``None`` as its
    gradient. A layer with several inputs takes a tuple (see :mod:`functional_dl.types`): every float entry
    is checked (named ``x[0]``, ``x[1]``, ... in the report), and every integer, boolean or
    ``None`` entry (ids, lengths, masks, absent inputs) must get ``None`` in ``dx``. A layer with
    several outputs gets a random cotangent for each float output, and ``L`` sums over all of
    them. A tuple ``x`` always means several inputs: pass one input as an array.

    Args:
        layer: the layer (or network) under test.
        params: its parameters (any float dtype).
        x: an input batch, or a tuple of them for a layer with several inputs.
        ctx: the forward context (training mode, key, state); the same one is used for every
            evaluation, so dropout masks are fixed.
        key: key for the random cotangent.
        eps: finite-difference step.
        rtol: relative tolerance per entry.
        atol: absolute tolerance per entry.
        raise_on_failure: raise ``AssertionError`` with the report if any entry is out of tolerance.

    Returns:
        A :class:`GradientReport` naming the worst entry.

    Raises:
        AssertionError: a failed check (with ``raise_on_failure``), ``grads`` with other keys
            than ``params``, or ``dx`` not shaped like ``x`` (a gradient for an integer input, or
            none for a float one).

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random
        >>> layer = L.dense(3)
        >>> _, params = layer.init(random.key(0), (None, 4))
        >>> check_gradients(layer, params, np.ones((2, 4))).passed
        True
    """
    p64 = cast(params, np.float64)
    x64 = _as_float64(x)
    ctx64 = ctx._replace(buffers=cast(ctx.buffers, np.float64)) if ctx.buffers else ctx
    y, cache = layer.forward(p64, x64, ctx64)  # type: ignore[arg-type]  # a tuple for several inputs
    r = _cotangent(y, key if key is not None else random.key(0))
    dx, grads = layer.backward(p64, cache, r)  # type: ignore[arg-type]

    def loss_of_input(path: Path) -> Callable[[Array], float]:
        def f(v: Array) -> float:
            return _dot(r, layer.forward(p64, replace_leaf(x64, path, v), ctx64)[0])  # type: ignore[arg-type]

        return f

    def loss_of_param(name: str) -> Callable[[Array], float]:
        def f(v: Array) -> float:
            return _dot(r, layer.forward({**p64, name: v}, x64, ctx64)[0])  # type: ignore[arg-type]

        return f

    entries: list[tuple[str, Array, Array]] = []
    for path, v in leaves(x64):
        if differentiable(v):
            numeric = numerical_gradient(loss_of_input(path), v, eps)
            entries.append((leaf_name(path), _input_gradient(dx, path), numeric))
        else:
            _check_no_gradient(dx, path)
    if grads.keys() != p64.keys():
        raise AssertionError(f"grads keys {sorted(grads)} differ from params keys {sorted(p64)}")
    for name in sorted(p64):
        entries.append(
            (name, np.asarray(grads[name]), numerical_gradient(loss_of_param(name), p64[name], eps))
        )
    report = _compare(entries, rtol, atol)
    if raise_on_failure and not report.passed:
        raise AssertionError(report.describe())
    return report


def check_loss_gradients(
    loss: Callable[[Array, Any], tuple[Array, Array]],
    pred: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    raise_on_failure: bool = True,
) -> GradientReport:
    """Check a loss's ``dpred`` against central finite differences of ``sum(value)`` in float64.

    Example:
        >>> import numpy as np
        >>> from functional_dl.losses import mean_squared_error
        >>> check_loss_gradients(mean_squared_error, np.array([[0.5, 2.0]]), np.array([[1.0, 0.0]])).passed
        True
    """
    p64 = np.array(pred, dtype=np.float64)
    t = np.asarray(target)
    t = t.astype(np.float64) if t.dtype.kind == "f" else t
    _, dpred = loss(p64, t)
    numeric = numerical_gradient(lambda v: float(np.sum(loss(v, t)[0])), p64, eps)
    report = _compare([("pred", np.asarray(dpred, dtype=np.float64), numeric)], rtol, atol)
    if raise_on_failure and not report.passed:
        raise AssertionError(report.describe())
    return report
