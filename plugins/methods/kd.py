"""Hinton et al. (2015) knowledge distillation (docs/methods.md §3), with the option of logit standardization
(``logit_std``; Sun et al., CVPR 2024; docs/methods.md, LS)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    PairInfo,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    kl_per_sample,
    standardize_logits,
)

from ._logit_std import LS_BASE_TEMPERATURE, LS_KD_WEIGHT, unset, with_ls_defaults


class HintonKD(DistillationMethod):
    """Hinton et al. (2015): γ·CE + α·T²·KL(σ_T(zt) ‖ σ_T(zs)), batchmean.

    ``logit_std``: both logit vectors are Z-scored per sample (``standardize_logits``) before the temperature;
    the CE keeps the student's raw logits. Off by default, and then left out of the run key.
    """

    def __init__(self, T: float | None = None, gamma: float = 0.1, alpha: float | None = None,
                 logit_std: bool = False) -> None:
        super().__init__()
        self.logit_std = bool(logit_std)
        self.T = unset(T, 4.0, LS_BASE_TEMPERATURE, self.logit_std)
        self.alpha = unset(alpha, 0.9, LS_KD_WEIGHT, self.logit_std)
        self.gamma = float(gamma)

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any], pair: PairInfo) -> dict[str, Any]:
        """T and α filled in (4 and 0.9; with ``logit_std`` LS's 2 and 9), so the key holds what ran."""
        return with_ls_defaults(params, {"T": (4.0, LS_BASE_TEMPERATURE), "alpha": (0.9, LS_KD_WEIGHT)})

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.teacher_logits is not None
        zs, zt = step.student_logits, step.teacher_logits
        if self.logit_std:
            zs, zt = standardize_logits(zs), standardize_logits(zt)
        kl = kl_per_sample(zt, zs, self.T)
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets),
                "kd": self.alpha * self.T**2 * kl,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("kd", HintonKD)
