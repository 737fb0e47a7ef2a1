"""Dynamic Temperature Distillation with Label Adjustment (DTD-LA; Wen, Lai & Qian, "Preparing lessons:
Improve knowledge distillation with better supervision", Neurocomputing 2021).

Why: Hinton KD gives every sample the same temperature and passes on the teacher's mistakes. DTD gives the
samples on which student and teacher disagree (the hard ones) a lower temperature, hence a sharper target; LA
swaps a wrong teacher's top probability with the label's, so the target's argmax is the label. The LR paper
(arXiv 2404.03693) calls LA the "swap" strategy and improves on it. Formulas and defaults: docs/methods.md §3.
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
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("dtd_la", DTDLA)
