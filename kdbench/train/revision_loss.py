"""The loss that Label Revision feeds, the paper's Eq. (11) (docs/methods.md §5).

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

from kdbench.contracts.losses import upcast
from kdbench.contracts.revisions import DEFAULT_LAMBDA1, DEFAULT_LAMBDA2, LabelRevision


@dataclass(frozen=True)
class RevisionLossConfig:
    """Eq. (11) options. ``reduction`` "mean" averages the MSE terms over classes, "sum" sums them."""

    lambda1: float = DEFAULT_LAMBDA1
    lambda2: float = DEFAULT_LAMBDA2
    reduction: Literal["mean", "sum"] = "mean"
    temperature: float = 1.0  # teacher temperature of pt = softmax(zt / T) before revision


def _subset_mean(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` over ``mask`` and the subset's size; an empty subset contributes exactly 0 (no NaN)."""
    count = mask.sum()
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count.clamp(min=1), count


def revision_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    strategy: LabelRevision,
    config: RevisionLossConfig,
    distill: Tensor | None = None,
) -> dict[str, tuple[Tensor, Tensor]]:
    """Eq. (11)'s three terms on a batch, with Data Selection, each as ``(mean over its subset, subset size)``.

    ``distill`` marks D_t (None: every sample). Samples outside D_t (D_s) get CE only. Each term is
    averaged over its own subset [docs/methods.md §5, a choice]: CE over R ∪ D_s, the logit MSE over R, the
    probability MSE over W; an empty subset contributes 0. The sizes let the ranks of a DDP run weight their
    shares to the global batch's subsets (docs/methods.md §1).
    """
    zs, zt = upcast(student_logits), upcast(teacher_logits)
    in_dt = torch.ones_like(targets, dtype=torch.bool) if distill is None else distill
    right = in_dt & (zt.argmax(dim=1) == targets)
    wrong = in_dt & ~right
    def reduce(x: Tensor) -> Tensor:
        return x.mean(dim=1) if config.reduction == "mean" else x.sum(dim=1)

    ce = F.cross_entropy(zs, targets, reduction="none")
    logit_mse = reduce((zs - zt) ** 2)
    revised = strategy.revise(F.softmax(zt / config.temperature, dim=1), targets)
    prob_mse = reduce((F.softmax(zs, dim=1) - revised) ** 2)
    ce_mean, ce_count = _subset_mean(ce, right | ~in_dt)
    right_mean, right_count = _subset_mean(logit_mse, right)
    wrong_mean, wrong_count = _subset_mean(prob_mse, wrong)
    return {
        "ce": (ce_mean, ce_count),
        "lr_right": (config.lambda1 * right_mean, right_count),
        "lr_wrong": (config.lambda2 * wrong_mean, wrong_count),
    }


def revision_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    strategy: LabelRevision,
    config: RevisionLossConfig,
    distill: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. (11) on a batch (:func:`revision_terms` summed) and its three named terms."""
    terms = revision_terms(student_logits, teacher_logits, targets, strategy, config, distill)
    parts = {name: mean for name, (mean, _) in terms.items()}
    return parts["ce"] + parts["lr_right"] + parts["lr_wrong"], parts
