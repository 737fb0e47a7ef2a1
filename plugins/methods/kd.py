"""Hinton et al. (2015) knowledge distillation (docs/methods.md §3)."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    kl_per_sample,
)


class HintonKD(DistillationMethod):
    """Hinton et al. (2015): γ·CE + α·T²·KL(σ_T(zt) ‖ σ_T(zs)), batchmean."""

    def __init__(self, T: float = 4.0, gamma: float = 0.1, alpha: float = 0.9) -> None:
        super().__init__()
        self.T, self.gamma, self.alpha = float(T), float(gamma), float(alpha)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.teacher_logits is not None
        kl = kl_per_sample(step.teacher_logits, step.student_logits, self.T)
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets),
                "kd": self.alpha * self.T**2 * kl,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("kd", HintonKD)
