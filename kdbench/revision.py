"""Label Revision (the paper's §III-B) and the loss it feeds, Eq. (11).

A revision strategy rewrites the teacher's probabilities using the ground truth. The paper's
strategy (Eq. 7–9) mixes in the one-hot label just enough to make the label the argmax:
``p = β·pt + (1−β)·e_y`` with ``β = η / (pt_max − pt_y + 1)``, η < 1.

Eq. (11) splits teacher-supervised samples by whether the teacher is right on the augmented sample:
right ones (R) get CE plus an MSE between student and teacher logits; wrong ones (W) get an MSE
between the student's probabilities and the revised teacher probabilities (no CE: p already carries y).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.methods import upcast


class LabelRevision:
    """Base class of revision plugins: ``revise(teacher_probs, targets) -> revised_probs``."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError


def one_hot_like(probs: Tensor, targets: Tensor) -> Tensor:
    return F.one_hot(targets, probs.shape[1]).to(probs.dtype)


@dataclass(frozen=True)
class RevisionLossConfig:
    """Eq. (11) options. ``reduction`` "mean" averages the MSE terms over classes, "sum" sums them."""

    lambda1: float = 1.0
    lambda2: float = 1.0
    reduction: Literal["mean", "sum"] = "mean"
    temperature: float = 1.0  # teacher temperature of pt = softmax(zt / T) before revision


def _subset_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask``; an empty subset contributes exactly 0 (and no NaN)."""
    count = mask.sum()
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count.clamp(min=1)


def revision_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    strategy: LabelRevision,
    config: RevisionLossConfig,
    distill: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. (11) on a batch, with Data Selection.

    ``distill`` marks D_t (None: every sample). Samples outside D_t (D_s) get CE only. Each term is
    averaged over its own subset [METHODS.md §5 choice]: CE over R ∪ D_s, the logit MSE over R, the
    probability MSE over W; an empty subset contributes 0.
    """
    zs, zt = upcast(student_logits), upcast(teacher_logits)
    in_dt = torch.ones_like(targets, dtype=torch.bool) if distill is None else distill
    right = in_dt & (zt.argmax(dim=1) == targets)
    wrong = in_dt & ~right
    reduce = (lambda x: x.mean(dim=1)) if config.reduction == "mean" else (lambda x: x.sum(dim=1))
    ce = F.cross_entropy(zs, targets, reduction="none")
    logit_mse = reduce((zs - zt) ** 2)
    revised = strategy.revise(F.softmax(zt / config.temperature, dim=1), targets)
    prob_mse = reduce((F.softmax(zs, dim=1) - revised) ** 2)
    parts = {
        "ce": _subset_mean(ce, right | ~in_dt),
        "lr_right": config.lambda1 * _subset_mean(logit_mse, right),
        "lr_wrong": config.lambda2 * _subset_mean(prob_mse, wrong),
    }
    return parts["ce"] + parts["lr_right"] + parts["lr_wrong"], parts
