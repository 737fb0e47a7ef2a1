"""DIST (Huang, You, Wang, Qian & Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022).

Why: a much stronger teacher's predictions can differ so much from what a student can produce that matching
them exactly (KL) hurts. DIST asks only for the same *relations*: per sample, the student's class
probabilities should correlate (Pearson) with the teacher's (inter-class relation); per class, its
probabilities over the batch should correlate with the teacher's (intra-class relation). Pearson correlation
is invariant to shift and scale, so the student matches the shape, not the values. Formulas and defaults:
docs/methods.md, DIST.

The inter-class term is a mean over samples, so it is a per-sample term (Data Selection gives D_s samples CE
instead of it). The intra-class term correlates columns over the whole batch and is a batch term: like the
relational feature losses (docs/methods.md §6) it covers every sample the method receives, D_s included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    upcast,
)

#: Added to the product of the norms in the Pearson correlation (``cosine_similarity``'s ``eps`` in the official
#: lib/models/losses/dist_kd.py of hunto/image_classification_sota).
PEARSON_EPS = 1e-8


def pearson_rows(a: Tensor, b: Tensor, eps: float = PEARSON_EPS) -> Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``: the cosine of the rows centred on
    their means, ``Σ(a−ā)(b−b̄) / (‖a−ā‖·‖b−b̄‖ + eps)`` (0 for a constant row)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


class DIST(DistillationMethod):
    """DIST (Huang et al. 2022): ce_weight·CE + β·τ²·(1 − ρ_inter) + γ·τ²·(1 − mean_c ρ_intra,c).

    With ``y = softmax(z/τ)``: ρ_inter,i is the Pearson correlation of the student's and the teacher's ``y_i``
    over the classes (a per-sample term); ρ_intra,c that of column c over the batch (a batch term). Defaults: the
    CIFAR-100 setting (β = γ = 2, τ = 4); ImageNet uses β = γ = τ = 1.
    """

    owns_logit_loss: ClassVar[bool] = True

    def __init__(self, beta: float = 2.0, gamma: float = 2.0, tau: float = 4.0, ce_weight: float = 1.0) -> None:
        super().__init__()
        self.beta, self.gamma, self.tau = float(beta), float(gamma), float(tau)
        self.ce_weight = float(ce_weight)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if step.teacher_logits is None:
            raise ValueError("dist needs teacher logits")
        y_s = F.softmax(upcast(step.student_logits) / self.tau, dim=1)
        # Label Revision (docs/methods.md §7): the teacher's σ_τ(zt) revised where the teacher is wrong; both
        # relations then read the revised distribution.
        y_t = step.teacher_target(F.softmax(upcast(step.teacher_logits) / self.tau, dim=1)).to(y_s.dtype)
        scale = self.tau**2
        inter = 1.0 - pearson_rows(y_s, y_t)
        intra = 1.0 - pearson_rows(y_s.t(), y_t.t()).mean()
        return LossTerms(
            sample={
                "ce": self.ce_weight * cross_entropy_per_sample(step.student_logits, step.targets),
                "inter": self.beta * scale * inter,
            },
            batch={"intra": self.gamma * scale * intra},
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("dist", DIST)
