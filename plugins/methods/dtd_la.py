"""Dynamic Temperature Distillation with Label Adjustment (DTD-LA; Wen, Lai & Qian, "Preparing lessons:
Improve knowledge distillation with better supervision", Neurocomputing 2021).

Two fixes to the teacher's supervision in Hinton KD:

* DTD — a per-sample temperature. Samples on which the student's logits already point the same way as
  the teacher's (high cosine similarity) are "easy"; those where they disagree are "hard". With
  ``w_i = (1 − cos(zs_i, zt_i))^γ_w`` and ``τ_i = τ0 + β_d·(mean_j w_j − w_i)``, hard samples get a lower
  temperature (a sharper, more informative target) and easy ones a higher one. τ_i is a weighting, not
  something to optimize: it is computed without gradient.
* LA — label adjustment. Where the teacher is wrong (its argmax is not the label) its probabilities at
  the argmax class and at the label are swapped, so the target's argmax is the label and the rest of the
  teacher's distribution is kept. (The LR paper, arXiv 2404.03693, calls this the "swap" strategy.)

Loss per sample: ``γ·CE + α·τ_i²·KL(q_i ‖ σ_τi(zs_i))`` with ``q_i`` the adjusted ``σ_τi(zt_i)``
(docs/methods.md §3; defaults τ0=4, β_d=2, γ_w=1, τ_i ≥ 1, γ=0.1, α=0.9 are the project's choices).
"""

from __future__ import annotations

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
    kl_from_target,
    upcast,
)


def dynamic_temperatures(
    student_logits: Tensor, teacher_logits: Tensor, tau0: float, beta_d: float, gamma_w: float, tau_floor: float
) -> Tensor:
    """``τ_i = max(τ0 + β_d·(mean_j w_j − w_i), tau_floor)``, ``w_i = (1 − cos(zs_i, zt_i))^γ_w``; no gradient.

    The mean is over the whole batch as the method sees it.
    """
    with torch.no_grad():
        zs, zt = upcast(student_logits.detach()), upcast(teacher_logits.detach())
        dtype = torch.promote_types(zs.dtype, zt.dtype)
        cos = F.cosine_similarity(zs.to(dtype), zt.to(dtype), dim=1)
        # cos can exceed 1 by rounding; clamp so the base of the power stays ≥ 0 (γ_w may be fractional).
        w = (1.0 - cos).clamp_min(0.0).pow(gamma_w)
        tau = tau0 + beta_d * (w.mean() - w)
        return tau.clamp_min(tau_floor)


def swap_wrong_log_probs(log_q: Tensor, teacher_logits: Tensor, targets: Tensor) -> Tensor:
    """Swap the (log-)probability at the teacher's argmax with the one at the label, on teacher-wrong rows.

    Rows where the teacher is right are unchanged (the swap would be a no-op there anyway). Working on
    log-probabilities keeps the KL finite; exp of the result is the swapped distribution.
    """
    top = teacher_logits.argmax(dim=1)
    rows = torch.arange(log_q.shape[0], device=log_q.device)
    at_top = log_q[rows, top]
    at_y = log_q[rows, targets]
    swapped = log_q.clone()
    swapped[rows, top] = at_y
    swapped[rows, targets] = at_top
    return swapped


class DTDLA(DistillationMethod):
    """DTD-LA (Wen et al. 2021): γ·CE + α·τ_i²·KL(swap(σ_τi(zt_i)) ‖ σ_τi(zs_i)), per-sample τ_i."""

    owns_logit_loss: ClassVar[bool] = True

    def __init__(
        self,
        tau0: float = 4.0,
        beta_d: float = 2.0,
        gamma_w: float = 1.0,
        tau_floor: float = 1.0,
        gamma: float = 0.1,
        alpha: float = 0.9,
    ) -> None:
        super().__init__()
        self.tau0, self.beta_d, self.gamma_w = float(tau0), float(beta_d), float(gamma_w)
        self.tau_floor = float(tau_floor)
        self.gamma, self.alpha = float(gamma), float(alpha)

    def temperatures(self, step: StepInputs) -> Tensor:
        assert step.teacher_logits is not None
        return dynamic_temperatures(
            step.student_logits, step.teacher_logits, self.tau0, self.beta_d, self.gamma_w, self.tau_floor
        )

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if step.teacher_logits is None:
            raise ValueError("dtd_la needs teacher logits")
        zs, zt, y = upcast(step.student_logits), upcast(step.teacher_logits), step.targets
        tau = self.temperatures(step)[:, None]
        log_p_s = F.log_softmax(zs / tau.to(zs.dtype), dim=1)
        log_p_t = F.log_softmax(zt / tau.to(zt.dtype), dim=1)
        if step.revise_teacher is None:
            log_q = swap_wrong_log_probs(log_p_t, zt, y)
            kl = (log_q.exp() * (log_q - log_p_s)).sum(dim=1)
        else:  # Label Revision replaces the swap (docs/methods.md §7)
            kl = kl_from_target(step.teacher_target(log_p_t.exp()), log_p_s)
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, y),
                "kd": self.alpha * tau.squeeze(1).to(kl.dtype) ** 2 * kl,
            }
        )


@hookimpl
def kdbench_register_methods(register):
    register("dtd_la", DTDLA)
