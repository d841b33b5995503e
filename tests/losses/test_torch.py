"""Every loss that PyTorch has, against PyTorch in float64 (values and ``torch.autograd`` gradients).

Agreement to 1e-10 relative for every reduction, with and without per-element (or per-sample)
weights, on the registry's hypothesis-drawn inputs; and PyTorch's own ``"mean"``/``"sum"``
reductions equal ours.

"Relative" is ``max |ours - torch| / max(max |torch|, scale)`` where ``scale`` is the size of the
terms that are summed: the reduced absolute per-element losses for the value, and the gradient's
natural unit (1, or ``1 / n`` for ``"mean"``) for the gradient. Where a per-element loss is itself a
difference of terms (KL's ``p log p - p log q``), the terms' sizes (``LossCase.term_size``) stand
in for it. Without it, results that cancel to zero (the gradient ``p - q`` for a uniform soft
target at equal logits, or a KL near 0 at ``p ~ q``) would compare two rounding noises of 1e-17
with each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.losses.cases import LOSS_CASES, LossCase, reduce_like_ours

# Before the references: they import torch at module level (so does tests.layers.torch_refs).
torch = pytest.importorskip("torch")
from tests.layers.torch_refs import rel_diff  # noqa: E402
from tests.losses.torch_refs import TORCH_LOSSES  # noqa: E402

pytestmark = pytest.mark.torch

RTOL = 1e-10
CASES = [c for c in LOSS_CASES if c.torch_ref is not None]


def _torch_target(target: np.ndarray) -> Any:
    return torch.tensor(target)  # int64 labels stay integer (class indices), floats stay float64


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@given(data=st.data())
def test_matches_torch(case: LossCase, reduction: str, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    weights = None
    if data.draw(st.booleans()):
        shape = (pred.shape[0], *pred.shape[2:]) if case.per_sample else pred.shape
        weights = np.linspace(0.0, 2.0, int(np.prod(shape))).reshape(shape)
    value, grad = case.fn(pred, target, reduction=reduction, weights=weights)

    assert case.torch_ref is not None
    x = torch.tensor(pred, requires_grad=True)
    per = TORCH_LOSSES[case.torch_ref](x, _torch_target(target), "none")
    out = reduce_like_ours(per, reduction, None if weights is None else torch.tensor(weights))
    out.backward(torch.ones_like(out))
    assert x.grad is not None
    value_scale = float(_reduce(_term_sizes(case, pred, target, weights), reduction).max())
    n_losses = pred.size // pred.shape[1] if case.per_sample else pred.size
    grad_scale = 1.0 / n_losses if reduction == "mean" else 1.0
    assert rel_diff(value, out.detach().numpy(), value_scale) <= RTOL
    assert rel_diff(grad, x.grad.numpy(), grad_scale) <= RTOL


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@given(data=st.data())
def test_torch_reductions_mean_what_ours_mean(case: LossCase, reduction: str, data: st.DataObject) -> None:
    pred, target = case.draw(data)
    value, _ = case.fn(pred, target, reduction=reduction)
    assert case.torch_ref is not None
    theirs = TORCH_LOSSES[case.torch_ref](torch.tensor(pred), _torch_target(target), reduction)
    assert (
        rel_diff(value, theirs.numpy(), float(_reduce(_term_sizes(case, pred, target, None), reduction)))
        <= RTOL
    )


def _term_sizes(
    case: LossCase, pred: np.ndarray, target: np.ndarray, weights: np.ndarray | None
) -> np.ndarray:
    """Per-element size of what is summed: ``|loss|`` or ``term_size`` of a difference, times ``|w|``."""
    if case.term_size is None:
        sizes, _ = case.fn(pred, target, reduction="none", weights=weights)
        return np.abs(sizes)
    sizes = case.term_size(pred, target)
    return sizes if weights is None else sizes * np.abs(weights)


def _reduce(a: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return np.asarray(a.mean())
    if reduction == "sum":
        return np.asarray(a.sum())
    return a
