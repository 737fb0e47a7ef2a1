"""Decoupled Knowledge Distillation (DKD; Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022).

Why: classic KD couples two parts through ``1 − p_t,y``: TCKD (how confident the teacher is on the label)
and NCKD (the "dark knowledge" over the other classes), and so scales NCKD down on exactly the samples the
teacher is sure of. DKD weights the two separately, β per teacher/student pair, after a linear warm-up, and
has no Hinton KD term besides them. Formulas, the β table and the defaults (mdistiller's, which reproduce
the published CIFAR-100 numbers): docs/methods.md §3. ``logit_std`` Z-scores both logit vectors first (logit
standardization, Sun et al., CVPR 2024; docs/methods.md, LS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    PairInfo,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    kl_from_target,
    standardize_logits,
    upcast,
)

from ._logit_std import LS_BASE_TEMPERATURE, LS_KD_WEIGHT, unset, with_ls_defaults

DEFAULT_BETA = 8.0
# (teacher, student) → β, as published for CIFAR-100 (DKD paper / mdistiller configs).
PAIR_BETA: dict[tuple[str, str], float] = {
    ("resnet56", "resnet20"): 2.0,
    ("resnet110", "resnet32"): 2.0,
    ("vgg13", "vgg8"): 6.0,
    ("wrn_40_2", "wrn_16_2"): 6.0,
    ("wrn_40_2", "wrn_40_1"): 6.0,
    ("vgg13", "MobileNetV2"): 6.0,
}
# How far the target logit (already divided by T) is pushed down to leave it out of the non-target
# softmax; mdistiller's value, kept so the numbers match (docs/methods.md §3).
TARGET_MASK_OFFSET = 1000.0


def binary_log_probs(scaled_logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(log p_y, log(1 − p_y))`` of ``softmax(scaled_logits)``, per sample, without forming ``1 − p_y``.

    Both come from log-sum-exps, so they stay finite for any finite logits (``1 − p_y`` would round to
    0 and its log to −inf as soon as the target dominates).
    """
    is_target = F.one_hot(targets, scaled_logits.shape[1]).bool()
    lse_all = torch.logsumexp(scaled_logits, dim=1)
    log_p_target = scaled_logits.gather(1, targets[:, None]).squeeze(1) - lse_all
    lse_rest = torch.logsumexp(scaled_logits.masked_fill(is_target, float("-inf")), dim=1)
    return log_p_target, lse_rest - lse_all


def tckd_per_sample(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, T: float) -> Tensor:
    """``KL(b_t ‖ b_s)`` with ``b = [p_y, 1 − p_y]`` and ``p = σ_T(z)``, per sample (no T² factor)."""
    s_tgt, s_rest = binary_log_probs(upcast(student_logits) / T, targets)
    t_tgt, t_rest = binary_log_probs(upcast(teacher_logits) / T, targets)
    # exp of a finite log-probability may underflow to 0: the term is then 0·(finite) = 0, as in xlogy.
    return t_tgt.exp() * (t_tgt - s_tgt) + t_rest.exp() * (t_rest - s_rest)


def nckd_per_sample(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, T: float) -> Tensor:
    """``KL(p̂_t ‖ p̂_s)`` over the non-target classes, per sample (no T² factor).

    ``p̂ = softmax(z/T − 1000·e_y)``: the target logit is masked by subtracting a large constant, as in
    the reference implementation, and the rest is a plain (stable) log-softmax.
    """
    mask = F.one_hot(targets, student_logits.shape[1]).to(upcast(student_logits).dtype) * TARGET_MASK_OFFSET
    log_s = F.log_softmax(upcast(student_logits) / T - mask, dim=1)
    log_t = F.log_softmax(upcast(teacher_logits) / T - mask.to(upcast(teacher_logits).dtype), dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1)


def revised_tckd_nckd(student_logits: Tensor, target_probs: Tensor, targets: Tensor, T: float) -> tuple[Tensor, Tensor]:
    """TCKD and NCKD (no T² factor) against a teacher distribution given as probabilities ``q`` (Label
    Revision's revised σ_T(zt), docs/methods.md §7): ``b_t = [q_y, 1 − q_y]`` and the non-target part
    ``q_{−y} / (1 − q_y)``."""
    zs = upcast(student_logits) / T
    s_tgt, s_rest = binary_log_probs(zs, targets)
    q = target_probs.to(zs.dtype)
    q_y = q.gather(1, targets[:, None]).squeeze(1)
    binary = torch.stack([q_y, 1 - q_y], dim=1)
    tckd = kl_from_target(binary, torch.stack([s_tgt, s_rest], dim=1))
    is_target = F.one_hot(targets, q.shape[1]).bool()
    rest = q.masked_fill(is_target, 0.0) / (1 - q_y).clamp_min(torch.finfo(q.dtype).tiny)[:, None]
    log_s_rest = F.log_softmax(zs - is_target.to(zs.dtype) * TARGET_MASK_OFFSET, dim=1)
    return tckd, kl_from_target(rest, log_s_rest)


def warmup_factor(epoch: int, warmup: float) -> float:
    """``min(epoch / warmup, 1)`` for the 1-indexed ``epoch``; no warm-up when ``warmup <= 0``."""
    if warmup <= 0:
        return 1.0
    return min(epoch / warmup, 1.0)


class DKD(DistillationMethod):
    """Decoupled KD (Zhao et al. 2022): ce_weight·CE + min(epoch/warmup, 1)·(α·T²·TCKD + β·T²·NCKD).

    ``beta=None`` takes β from the published per-pair table ``PAIR_BETA`` (docs/methods.md §3), else 8.
    ``logit_std``: both logit vectors are Z-scored per sample before the temperature (and the target mask); the CE
    keeps the student's raw logits. Off by default, and then left out of the run key.
    """

    owns_logit_loss: ClassVar[bool] = True

    def __init__(
        self,
        alpha: float | None = None,
        beta: float | None = None,
        T: float | None = None,
        ce_weight: float = 1.0,
        warmup: float = 20,
        logit_std: bool = False,
    ) -> None:
        super().__init__()
        ls = bool(logit_std)
        self.alpha = unset(alpha, 1.0, LS_KD_WEIGHT, ls)
        # Constructed directly (not through a suite) with beta=None: the pair-independent default.
        self.beta = unset(beta, DEFAULT_BETA, LS_KD_WEIGHT * DEFAULT_BETA, ls)
        self.T = unset(T, 4.0, LS_BASE_TEMPERATURE, ls)
        self.ce_weight = float(ce_weight)
        self.warmup = float(warmup)
        self.logit_std = bool(logit_std)

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any], pair: PairInfo) -> dict[str, Any]:
        """Fill β from the (teacher, student) table when it is not given (an explicit β is kept), and α and T;
        with ``logit_std``, LS's settings: T 2, α and the table's β multiplied by 9."""
        table_beta = PAIR_BETA.get((pair.teacher or "", pair.student), DEFAULT_BETA)
        return with_ls_defaults(params, {"alpha": (1.0, LS_KD_WEIGHT), "beta": (table_beta, LS_KD_WEIGHT * table_beta),
                                         "T": (4.0, LS_BASE_TEMPERATURE)})

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if step.teacher_logits is None:
            raise ValueError("dkd needs teacher logits")
        zs, zt, y = step.student_logits, step.teacher_logits, step.targets
        if self.logit_std:
            zs, zt = standardize_logits(zs), standardize_logits(zt)
        ramp = warmup_factor(step.epoch, self.warmup)
        scale = self.T**2
        if step.revise_teacher is not None:  # Label Revision: split the revised distribution (§7)
            q = step.teacher_target(F.softmax(upcast(zt) / self.T, dim=1))
            tckd, nckd = revised_tckd_nckd(zs, q, y, self.T)
        else:
            tckd, nckd = tckd_per_sample(zs, zt, y, self.T), nckd_per_sample(zs, zt, y, self.T)
        return LossTerms(
            sample={
                "ce": self.ce_weight * cross_entropy_per_sample(step.student_logits, y),
                "tckd": ramp * self.alpha * scale * tckd,
                "nckd": ramp * self.beta * scale * nckd,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("dkd", DKD)
