"""PyTorch per-element references for the loss registry (``reduction="none"``), by name.

Import only after ``pytest.importorskip("torch")``; without torch, ``tests/conftest.py`` keeps
--doctest-modules from collecting this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

TorchLoss = Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]


def _kl(x: torch.Tensor, t: torch.Tensor, reduction: str, log_target: bool = False) -> torch.Tensor:
    with warnings.catch_warnings():  # torch warns that "mean" is not "batchmean"; we mean "mean"
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(x, t, reduction=reduction, log_target=log_target)


def _hinge(x: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    per = torch.clamp(1 - y * x, min=0)
    return {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]


TORCH_LOSSES: dict[str, TorchLoss] = {
    "cross_entropy": lambda x, t, r: F.cross_entropy(x, t, reduction=r),
    "cross_entropy_smoothed": lambda x, t, r: F.cross_entropy(x, t, reduction=r, label_smoothing=0.2),
    "cross_entropy_smoothed_0.3": lambda x, t, r: F.cross_entropy(x, t, reduction=r, label_smoothing=0.3),
    "bce_with_logits": lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
    "bce": lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r),
    "mse": lambda x, t, r: F.mse_loss(x, t, reduction=r),
    "l1": lambda x, t, r: F.l1_loss(x, t, reduction=r),
    "huber": lambda x, t, r: F.huber_loss(x, t, reduction=r),
    "huber_0.5": lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=0.5),
    "kl": _kl,
    "kl_log_target": lambda x, t, r: _kl(x, t, r, log_target=True),
    "hinge": _hinge,
    "multi_margin": lambda x, t, r: F.multi_margin_loss(x, t, reduction=r),
}
