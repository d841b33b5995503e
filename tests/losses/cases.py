"""The registry of every loss under test, with its PyTorch reference and how to draw its inputs.

A :class:`LossCase` draws a prediction and a matching target with hypothesis and names the
PyTorch function computing the same per-element (``reduction="none"``) losses; the tests apply
our reduction and weights to both sides, and separately check PyTorch's own reductions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl import losses
from functional_dl.types import Array

Draw = Callable[[st.DataObject], tuple[Array, np.ndarray]]


class LossCase(NamedTuple):
    """One loss configuration.

    Attributes:
        id: test id.
        fn: the loss, ``(pred, target, *, reduction, weights) -> (value, dpred)``.
        draw: draws ``(pred, target)`` in float64 (targets already valid and off any kink).
        torch_ref: name of the reference in ``torch_refs.py`` (``None``: PyTorch has no such loss).
        per_sample: the loss reduces over a class axis 1, so weights are per sample.
        term_size: for a loss whose per-element value is a difference of terms that can cancel,
            ``(pred, target) -> |first| + |second|`` per element: the size of the rounding error
            of either side. ``None``: the per-element loss is its own size.
    """

    id: str
    fn: Callable[..., tuple[Array, Array]]
    draw: Draw
    torch_ref: str | None
    per_sample: bool = False
    term_size: Callable[[Array, np.ndarray], np.ndarray] | None = None


def _floats(lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=32)


def _pred(
    data: st.DataObject, min_dims: int = 2, max_dims: int = 2, lo: float = -3.0, hi: float = 3.0
) -> Array:
    shape = data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, max_side=4))
    out: Array = data.draw(hnp.arrays(np.float64, shape, elements=_floats(lo, hi)))
    return out


def _logits_and_labels(data: st.DataObject, spatial: bool = False) -> tuple[Array, np.ndarray]:
    n = data.draw(st.integers(1, 4))
    c = data.draw(st.integers(2, 5))
    extra = (data.draw(st.integers(1, 3)),) if spatial else ()
    logits = data.draw(hnp.arrays(np.float64, (n, c, *extra), elements=_floats()))
    labels = data.draw(hnp.arrays(np.int64, (n, *extra), elements=st.integers(0, c - 1)))
    return logits, labels


def _probabilities(data: st.DataObject, shape: tuple[int, ...], axis: int = 1) -> Array:
    raw = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0, width=32)))
    raw = raw + 1e-3  # no all-zero rows
    out: Array = raw / raw.sum(axis=axis, keepdims=True)
    return out


def _logits_and_probs(data: st.DataObject) -> tuple[Array, np.ndarray]:
    logits, _ = _logits_and_labels(data)
    return logits, _probabilities(data, logits.shape)


def _logits_and_binary(data: st.DataObject) -> tuple[Array, np.ndarray]:
    pred = _pred(data)
    soft = data.draw(st.booleans())
    elements = st.floats(0.0, 1.0, width=32) if soft else st.sampled_from([0.0, 1.0])
    return pred, data.draw(hnp.arrays(np.float64, pred.shape, elements=elements))


def _probs_and_binary(data: st.DataObject) -> tuple[Array, np.ndarray]:
    pred = _pred(data, lo=0.015625, hi=0.984375)  # 1/64 and 63/64: exact at float32 width
    return pred, data.draw(hnp.arrays(np.float64, pred.shape, elements=st.floats(0.0, 1.0, width=32)))


def _regression(data: st.DataObject, avoid: float | None = None) -> tuple[Array, np.ndarray]:
    """Prediction and target; with ``avoid``, every ``|pred - target|`` stays 1e-3 from it."""
    pred = _pred(data, min_dims=1, max_dims=3)
    offsets = _floats()
    if avoid is not None:
        offsets = offsets.filter(lambda v: abs(abs(v) - avoid) >= 1e-3)
    return pred, pred - data.draw(hnp.arrays(np.float64, pred.shape, elements=offsets))


def _kl(data: st.DataObject, log_target: bool) -> tuple[Array, np.ndarray]:
    logits, _ = _logits_and_labels(data)
    log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    p = _probabilities(data, logits.shape)
    if data.draw(st.booleans()):
        p = np.where(p < 0.2, 0.0, p)  # zero probabilities: 0 log 0 = 0
    return log_q, (np.log(p + 1e-3) if log_target else p)


def _kl_term_size(log_q: Array, target: np.ndarray, *, log_target: bool) -> np.ndarray:
    # KL per element is p log p - p log q; both terms are large where the difference is near 0.
    p = np.exp(target) if log_target else target
    log_p = target if log_target else np.log(np.where(p > 0, p, 1.0))
    out: np.ndarray = np.abs(p * log_p) + np.abs(p * log_q)
    return out


def _hinge(data: st.DataObject) -> tuple[Array, np.ndarray]:
    y = data.draw(
        hnp.arrays(
            np.float64,
            data.draw(hnp.array_shapes(max_dims=2, max_side=4)),
            elements=st.sampled_from([-1.0, 1.0]),
        )
    )
    margins = data.draw(
        hnp.arrays(np.float64, y.shape, elements=_floats().filter(lambda v: abs(v - 1) >= 1e-3))
    )
    return margins * y, y  # y * pred = margin, kept off the hinge at 1


def _multiclass_hinge(data: st.DataObject) -> tuple[Array, np.ndarray]:
    logits, labels = _logits_and_labels(data)
    true = np.take_along_axis(logits, labels[:, None], axis=1)
    slack = 1.0 - true + logits
    # Keep every rival's slack off the hinge at 0 by nudging it (the true class's own is always 1).
    logits = np.where(np.abs(slack) < 1e-3, logits + 3e-3, logits)
    return logits, labels


LOSS_CASES: list[LossCase] = [
    LossCase("ce_labels", losses.softmax_cross_entropy, _logits_and_labels, "cross_entropy", per_sample=True),
    LossCase(
        "ce_labels_smoothed",
        partial(losses.softmax_cross_entropy, label_smoothing=0.2),
        _logits_and_labels,
        "cross_entropy_smoothed",
        per_sample=True,
    ),
    LossCase(
        "ce_spatial",
        losses.softmax_cross_entropy,
        partial(_logits_and_labels, spatial=True),
        "cross_entropy",
        per_sample=True,
    ),
    LossCase("ce_soft", losses.softmax_cross_entropy, _logits_and_probs, "cross_entropy", per_sample=True),
    LossCase(
        "ce_soft_smoothed",
        partial(losses.softmax_cross_entropy, label_smoothing=0.3),
        _logits_and_probs,
        "cross_entropy_smoothed_0.3",
        per_sample=True,
    ),
    LossCase("sigmoid_bce", losses.sigmoid_binary_cross_entropy, _logits_and_binary, "bce_with_logits"),
    LossCase("bce", losses.binary_cross_entropy, _probs_and_binary, "bce"),
    LossCase("mse", losses.mean_squared_error, _regression, "mse"),
    LossCase("mae", losses.mean_absolute_error, partial(_regression, avoid=0.0), "l1"),
    LossCase("huber", losses.huber, partial(_regression, avoid=1.0), "huber"),
    LossCase("huber_0.5", partial(losses.huber, delta=0.5), partial(_regression, avoid=0.5), "huber_0.5"),
    LossCase(
        "kl",
        losses.kl_divergence,
        partial(_kl, log_target=False),
        "kl",
        term_size=partial(_kl_term_size, log_target=False),
    ),
    LossCase(
        "kl_log_target",
        partial(losses.kl_divergence, log_target=True),
        partial(_kl, log_target=True),
        "kl_log_target",
        term_size=partial(_kl_term_size, log_target=True),
    ),
    LossCase("hinge", losses.hinge, _hinge, "hinge"),
    LossCase("multiclass_hinge", losses.multiclass_hinge, _multiclass_hinge, "multi_margin", per_sample=True),
]


def reduce_like_ours(per_element: Any, reduction: str, weights: Any) -> Any:
    """Our reduction applied to a PyTorch tensor of per-element losses (weights, then mean/sum)."""
    if weights is not None:
        per_element = per_element * weights
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.sum()
    return per_element
