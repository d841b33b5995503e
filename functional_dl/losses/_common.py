"""What every loss shares: the contract, input checks, and reductions.

A loss is a pure function ``(pred, target, *, reduction="mean", weights=None) -> (value, dpred)``:

* ``value`` is a 0-d array of ``pred``'s dtype for ``reduction="mean"`` or ``"sum"``, and the
  per-element losses for ``"none"``;
* ``dpred`` has ``pred``'s shape and dtype and is the gradient of ``sum(value)`` with respect to
  ``pred`` (for ``"none"``, the vector-Jacobian product with a vector of ones).

``weights`` (optional) multiply the per-element losses before reduction and must broadcast to
them, as PyTorch's ``weight`` argument does; ``"mean"`` divides by the number of elements, as
PyTorch does. Losses over a class axis (cross-entropy, multi-class hinge) have one loss per
*sample* (``pred``'s shape without axis 1): their weights are per sample and ``"mean"`` averages
over samples. Targets and weights are cast to ``pred``'s dtype, so float32 in gives float32 out.

What a loss takes
-----------------
``pred``, ``target`` and ``weights`` may be arrays or array-likes (lists), converted once with
``np.asarray`` by the library's array-like rule (:mod:`functional_dl._arraylike`: strings, even
numeric ones, objects, complex numbers and masked arrays are refused). Then:

* ``pred`` is a floating-point array with a batch axis (an integer prediction is a
  :class:`~functional_dl.errors.DTypeError`). It is *not* checked for NaN or infinity: a network
  that diverged gives a NaN or infinite loss and gradient, quietly (no NumPy warning), as in
  PyTorch, so that :func:`functional_dl.optim.apply_if_finite` can skip the step.
* ``target`` has ``pred``'s shape (or, for class labels, ``pred``'s shape without the class axis);
  anything else is a :class:`~functional_dl.errors.ShapeError` naming the loss and both shapes, never
  a broadcast. NaN and ±infinity are refused (a :class:`~functional_dl.errors.LabelError`), as are
  values that do not fit in ``pred``'s dtype (``1e300`` for a float32 prediction); each loss adds
  its own range (``[0, 1]``, ``{-1, +1}``, whole class indices).
* ``weights`` are finite numbers (NaN and ±infinity are a :class:`~functional_dl.errors.DomainError`)
  broadcastable to the loss without enlarging it.
* ``reduction`` is one of the loss's choices, and the hyperparameters (``delta``, ``margin``,
  ``label_smoothing``) are real numbers in their range; anything else is a ``DomainError`` listing
  what is accepted.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from functional_dl._arraylike import as_numeric
from functional_dl._checks import check_float
from functional_dl.errors import DomainError, LabelError, ShapeError, describe_shape
from functional_dl.types import Array

__all__ = [
    "REDUCTIONS",
    "LossFn",
    "Reduction",
    "as_prediction",
    "as_target",
    "check_finite_target",
    "check_reduction",
    "quiet",
    "real_hyperparameter",
    "reduce_loss",
]

Reduction = Literal["mean", "sum", "none"]

#: The reductions every loss accepts.
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


class LossFn(Protocol):
    """``(pred, target) -> (value, dpred)``: a loss and its gradient with respect to ``pred``."""

    def __call__(self, pred: Array, target: npt.NDArray[np.generic], /) -> tuple[Array, Array]: ...


def quiet() -> np.errstate:
    """Where a loss's maths meets a NaN or infinite prediction: no warning, the NaN or inf shows in the value.

    ``inf - inf`` (an infinite logit shifted by its own maximum) and ``x * x`` past the largest
    float are what NumPy warns about; the loss returns the NaN or infinity it gets, which is the
    honest answer for such a prediction.
    """
    return np.errstate(over="ignore", invalid="ignore")


def check_reduction(reduction: object, loss: str, choices: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise :class:`DomainError` unless ``reduction`` is one of ``choices``, listing them."""
    if type(reduction) is not str or reduction not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise DomainError(loss, f"reduction must be one of {listed}, got {reduction!r}")


def real_hyperparameter(
    value: object,
    name: str,
    loss: str,
    *,
    low: float = -np.inf,
    high: float = np.inf,
    low_open: bool = False,
    finite: bool = False,
    expected: str | None = None,
) -> float:
    """``value`` as a Python float when it is a real number in ``[low, high]`` (``(low, high]``).

    A Python float keeps a float32 loss float32 (a NumPy float64 hyperparameter would upcast it).
    ``expected`` words the range for the message (``"positive"``); by default it is the interval.

    Raises:
        DomainError: a bool, a string, ``None``, NaN, an infinity when ``finite``, or a value out
            of range.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise DomainError(loss, f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if finite and not np.isfinite(v):
        raise DomainError(loss, f"{name} must be a finite real number, got {value!r}")
    if not (low < v if low_open else low <= v) or not v <= high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise DomainError(loss, f"{name} must be {expected or 'in ' + interval}, got {value!r}")
    return v


def as_prediction(pred: npt.ArrayLike, loss: str) -> Array:
    """``pred`` as a floating-point array with a batch axis (converted by the array-like rule)."""
    p = as_numeric(pred, "prediction", loss)
    check_float(p, loss, "prediction")
    if p.ndim < 1:
        raise ShapeError(loss, "expected a prediction with a batch axis, got a scalar")
    return p


def _cast(a: npt.NDArray[Any], dtype: np.dtype[Any]) -> Array:
    """``a`` as ``dtype``; a value too large for it becomes inf (quietly: the callers refuse it)."""
    if a.dtype == dtype:
        return a
    with np.errstate(over="ignore"):
        out: Array = a.astype(dtype)
    return out


def as_target(target: npt.ArrayLike, pred: Array, loss: str, *, finite: bool = True) -> Array:
    """``target`` as an array of ``pred``'s dtype and shape; refuses NaN, ±inf and shape mismatches.

    A target of shape ``(batch,)`` against a prediction of shape ``(batch, 1)`` is refused rather
    than broadcast to ``(batch, batch)``: that silent broadcast is a classic wrong-answer bug.
    With ``finite=False`` NaN and infinities are let through, for the caller to judge (a log
    probability of ``-inf`` is a zero probability).
    """
    t = as_numeric(target, "target", loss, error=LabelError)
    if t.shape != pred.shape:
        raise ShapeError(
            loss,
            f"expected target of shape {describe_shape(pred.shape)} (the prediction's), "
            f"got {describe_shape(t.shape)}",
        )
    out = _cast(t, pred.dtype)
    if finite and not np.isfinite(out).all():
        check_finite_target(t, loss)
        raise LabelError(loss, f"target values do not fit in the prediction's dtype {pred.dtype}")
    return out


def check_finite_target(t: npt.NDArray[Any], loss: str, *, nonnegative: bool = False) -> None:
    """Raise :class:`LabelError` if ``t`` holds NaN or infinity (or, if asked, a negative value)."""
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        found = "NaN" if np.isnan(t).any() else "infinity"
        raise LabelError(loss, f"target contains {found} (targets must be finite)")
    if nonnegative and t.size and t.min() < 0:
        raise LabelError(loss, f"target values must be >= 0, got minimum {t.min()}")


def _as_weights(
    weights: npt.ArrayLike, loss_shape: tuple[int, ...], dtype: np.dtype[Any], loss: str
) -> Array:
    """``weights`` as finite numbers of ``dtype`` that broadcast to ``loss_shape`` without enlarging it."""
    raw = as_numeric(weights, "weights", loss)
    try:
        shape = np.broadcast_shapes(raw.shape, loss_shape)
    except ValueError:
        shape = None
    if shape != loss_shape:
        how = "do not broadcast to" if shape is None else "would enlarge"
        raise ShapeError(
            loss,
            f"weights of shape {describe_shape(raw.shape)} {how} the loss shape {describe_shape(loss_shape)}",
        )
    w = _cast(raw, dtype)
    if not np.isfinite(w).all():
        if raw.dtype.kind == "f" and np.isnan(raw).any():
            raise DomainError(loss, "weights contain NaN (weights must be finite)")
        if raw.dtype.kind == "f" and np.isinf(raw).any():
            raise DomainError(loss, "weights contain infinity (weights must be finite)")
        raise DomainError(loss, f"weights do not fit in the prediction's dtype {dtype}")
    return w


def _expand(w: Array, ndim: int, axis: int) -> Array:
    """Weights broadcastable to a per-sample loss of rank ``ndim``, with a unit ``axis`` inserted."""
    full = w.reshape((1,) * (ndim - w.ndim) + w.shape)
    return np.expand_dims(full, axis)


def reduce_loss(
    per_element: Array,
    grad_per_element: Array,
    reduction: Reduction,
    weights: npt.ArrayLike | None,
    loss: str,
    *,
    class_axis: int | None = None,
) -> tuple[Array, Array]:
    """Apply weights and the reduction to per-element losses and their gradients.

    Args:
        per_element: losses of each element, shape of ``pred`` (or, for losses over a class
            axis, ``pred``'s shape without that axis: one loss per sample).
        grad_per_element: ``d per_element / d pred``, shape of ``pred``.
        reduction: ``"mean"`` (over all elements of ``per_element``), ``"sum"`` or ``"none"``;
            checked by the caller (:func:`check_reduction`) before any work is done.
        weights: optional multipliers broadcastable to ``per_element``.
        loss: name for error messages.
        class_axis: the axis of ``pred`` that ``per_element`` lacks (1 for cross-entropy's
            ``(N, C)`` logits), along which weights are broadcast for the gradient.

    Losses call it inside :func:`quiet`, with the rest of their maths: an infinite per-element
    loss times a zero weight, or summed with a negative infinity, is NaN without a warning.
    """
    dtype = per_element.dtype
    if weights is not None:
        w = _as_weights(weights, per_element.shape, dtype, loss)
        per_element = per_element * w
        grad_per_element = grad_per_element * (
            w if class_axis is None else _expand(w, per_element.ndim, class_axis)
        )
    if reduction == "none":
        return per_element, grad_per_element
    if reduction == "sum":
        return np.asarray(per_element.sum(), dtype=dtype), grad_per_element
    n = max(per_element.size, 1)
    grad: Array = grad_per_element / dtype.type(n)
    # sum / n is what .mean() computes, bit for bit, without its Python-level overhead.
    return np.asarray(per_element.sum() / dtype.type(n), dtype=dtype), grad
