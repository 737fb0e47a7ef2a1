"""NKD, the normalized KD loss (Yang, Zeng, Li, Zhang, Yuan & Li, "From Knowledge Distillation to
Self-Knowledge Distillation: A Unified Approach with Normalized Loss and Customized Soft Labels", ICCV 2023).

Why: KD's KL couples its target-class part with the non-target part through the factor ``1 − p_y``, so the
non-target knowledge weighs less exactly where the teacher is sure. NKD splits the two: the target term is
the teacher's target probability as the weight of the student's log-probability of the label, and the
non-target term matches the two distributions *renormalised over the non-target classes* at a temperature T,
weighted by γ. Formulas and defaults: docs/methods.md, NKD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
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


def non_target(x: Tensor, targets: Tensor) -> Tensor:
    """The B×(C−1) matrix of ``x`` without each row's target column (classes in their order)."""
    keep = ~F.one_hot(targets, x.shape[1]).bool()
    return x[keep].view(x.shape[0], x.shape[1] - 1)


class NKD(DistillationMethod):
    """NKD (Yang et al. 2023): ce_weight·CE − t_y·log s_y − γ·T²·Σ_{c≠y} t̂_c·log ŝ_c, per sample.

    ``s = softmax(zs)`` and ``t = softmax(zt)`` at temperature 1; ``ŝ`` and ``t̂`` are the softmax at T of the
    logits without the target class (the distributions renormalised over the other classes). Defaults: the
    official CIFAR-100 configuration (T = 3, γ = 3.5); its ImageNet configuration uses T = 1, γ = 1.5.
    """

    owns_logit_loss: ClassVar[bool] = True

    def __init__(self, T: float = 3.0, gamma: float = 3.5, ce_weight: float = 1.0) -> None:
        super().__init__()
        self.T, self.gamma, self.ce_weight = float(T), float(gamma), float(ce_weight)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if step.teacher_logits is None:
            raise ValueError("nkd needs teacher logits")
        zs, zt, y = upcast(step.student_logits), upcast(step.teacher_logits), step.targets
        log_s = F.log_softmax(zs, dim=1)
        log_s_rest = F.log_softmax(non_target(zs, y) / self.T, dim=1)
        if step.revise_teacher is None:
            t_y = F.softmax(zt, dim=1).gather(1, y[:, None]).squeeze(1)
            t_rest = F.softmax(non_target(zt, y) / self.T, dim=1)
        else:
            # Label Revision (docs/methods.md §7): both teacher distributions the loss reads, σ_1(zt) for the
            # target term and σ_T(zt) for the non-target one, revised where the teacher is wrong; the
            # non-target part of the revised q is q_{−y} / (1 − q_y), as DKD's NCKD.
            q1 = step.teacher_target(F.softmax(zt, dim=1))
            t_y = q1.gather(1, y[:, None]).squeeze(1)
            q_rest = non_target(step.teacher_target(F.softmax(zt / self.T, dim=1)), y)
            t_rest = q_rest / q_rest.sum(dim=1, keepdim=True).clamp_min(torch.finfo(q_rest.dtype).tiny)
        target = -t_y.to(log_s.dtype) * log_s.gather(1, y[:, None]).squeeze(1)
        rest = -(t_rest.to(log_s_rest.dtype) * log_s_rest).sum(dim=1)
        return LossTerms(
            sample={
                "ce": self.ce_weight * cross_entropy_per_sample(step.student_logits, y),
                "nkd_target": target,
                "nkd_non_target": self.gamma * self.T**2 * rest,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("nkd", NKD)
