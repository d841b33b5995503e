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
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from functional_dl._checks import check_float
from functional_dl.errors import LabelError, ShapeError, describe_shape
from functional_dl.types import Array

__all__ = ["LossFn", "Reduction", "as_target", "check_finite_target", "check_pair", "reduce_loss"]

Reduction = Literal["mean", "sum", "none"]


class LossFn(Protocol):
    """``(pred, target) -> (value, dpred)``: a loss and its gradient with respect to ``pred``."""

    def __call__(self, pred: Array, target: npt.NDArray[np.generic], /) -> tuple[Array, Array]: ...


def as_target(target: npt.ArrayLike, pred: Array, loss: str) -> Array:
    """``target`` as an array of ``pred``'s dtype and shape; refuses NaN and shape mismatches.

    A target of shape ``(batch,)`` against a prediction of shape ``(batch, 1)`` is refused rather
    than broadcast to ``(batch, batch)``: that silent broadcast is a classic wrong-answer bug.
    """
    t = np.asarray(target)
    if t.shape != pred.shape:
        raise ShapeError(
            loss,
            f"expected target of shape {describe_shape(pred.shape)} (the prediction's), "
            f"got {describe_shape(t.shape)}",
        )
    if t.dtype.kind not in "biuf":
        raise LabelError(loss, f"expected a numeric target, got dtype {t.dtype}")
    out: Array = t.astype(pred.dtype, copy=False)
    if t.dtype.kind == "f" and np.isnan(out).any():
        raise LabelError(loss, "target contains NaN")
    return out


def check_finite_target(t: Array, loss: str, *, nonnegative: bool = False) -> None:
    """Raise :class:`LabelError` if ``t`` holds NaN or infinity (or, if asked, a negative value)."""
    if not np.isfinite(t).all():
        raise LabelError(loss, "target contains NaN or infinity")
    if nonnegative and t.size and t.min() < 0:
        raise LabelError(loss, f"target values must be >= 0, got minimum {t.min()}")


def check_pair(pred: Array, loss: str) -> None:
    """Check that ``pred`` is a floating-point array with a batch axis."""
    check_float(pred, loss, "prediction")
    if pred.ndim < 1:
        raise ShapeError(loss, "expected a prediction with a batch axis, got a scalar")


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
        reduction: ``"mean"`` (over all elements of ``per_element``), ``"sum"`` or ``"none"``.
        weights: optional multipliers broadcastable to ``per_element``.
        loss: name for error messages.
        class_axis: the axis of ``pred`` that ``per_element`` lacks (1 for cross-entropy's
            ``(N, C)`` logits), along which weights are broadcast for the gradient.
    """
    dtype = per_element.dtype
    if weights is not None:
        w = np.asarray(weights, dtype=dtype)
        try:
            np.broadcast_shapes(w.shape, per_element.shape)
        except ValueError:
            raise ShapeError(
                loss,
                f"weights of shape {describe_shape(w.shape)} do not broadcast to the loss shape "
                f"{describe_shape(per_element.shape)}",
            ) from None
        if np.broadcast_shapes(w.shape, per_element.shape) != per_element.shape:
            raise ShapeError(loss, f"weights of shape {describe_shape(w.shape)} would enlarge the loss")
        if np.isnan(w).any():
            raise LabelError(loss, "weights contain NaN")
        per_element = per_element * w
        grad_per_element = grad_per_element * (
            w if class_axis is None else _expand(w, per_element.ndim, class_axis)
        )
    if reduction == "none":
        return per_element, grad_per_element
    if reduction == "sum":
        return np.asarray(per_element.sum(), dtype=dtype), grad_per_element
    if reduction == "mean":
        n = max(per_element.size, 1)
        grad: Array = grad_per_element / dtype.type(n)
        # sum / n is what .mean() computes, bit for bit, without its Python-level overhead.
        return np.asarray(per_element.sum() / dtype.type(n), dtype=dtype), grad
    raise ValueError(f"{loss}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
