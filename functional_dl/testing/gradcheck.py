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
from functional_dl.params import cast
from functional_dl.types import EVAL, Array, Context, Key, Layer, Params

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


def check_gradients(
    layer: Layer[Any],
    params: Params,
    x: npt.ArrayLike,
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

    Args:
        layer: the layer (or network) under test.
        params: its parameters (any float dtype).
        x: an input batch.
        ctx: the forward context (training mode, key, state); the same one is used for every
            evaluation, so dropout masks are fixed.
        key: key for the random cotangent.
        eps: finite-difference step.
        rtol: relative tolerance per entry.
        atol: absolute tolerance per entry.
        raise_on_failure: raise ``AssertionError`` with the report if any entry is out of tolerance.

    Returns:
        A :class:`GradientReport` naming the worst entry.

    Example:
        >>> import numpy as np
        >>> from functional_dl import layers as L, random
        >>> layer = L.dense(3)
        >>> _, params = layer.init(random.key(0), (None, 4))
        >>> check_gradients(layer, params, np.ones((2, 4))).passed
        True
    """
    p64 = cast(params, np.float64)
    x64 = np.array(x, dtype=np.float64)
    ctx64 = ctx._replace(buffers=cast(ctx.buffers, np.float64)) if ctx.buffers else ctx
    y, cache = layer.forward(p64, x64, ctx64)
    r = random.normal(key if key is not None else random.key(0), y.shape, np.float64)
    dx, grads = layer.backward(p64, cache, r)

    def loss_of_x(v: Array) -> float:
        return float(np.sum(r * layer.forward(p64, v, ctx64)[0]))

    def loss_of_param(name: str) -> Callable[[Array], float]:
        def f(v: Array) -> float:
            return float(np.sum(r * layer.forward({**p64, name: v}, x64, ctx64)[0]))

        return f

    entries: list[tuple[str, Array, Array]] = [
        ("x", np.asarray(dx, dtype=np.float64), numerical_gradient(loss_of_x, x64, eps))
    ]
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
