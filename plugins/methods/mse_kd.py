"""Logit matching by mean squared error (Kim et al., 2021), the paper's "KD (MSE)" row (docs/methods.md §3)."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import DistillationMethod, LossTerms, StepInputs, cross_entropy_per_sample, hookimpl, upcast


class MSELogitKD(DistillationMethod):
    """Kim et al. (2021): γ·CE + α·mean over classes of (zs − zt)² on raw logits, no temperature."""

    def __init__(self, gamma: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__()
        self.gamma, self.alpha = float(gamma), float(alpha)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.teacher_logits is not None
        mse = (upcast(step.student_logits) - upcast(step.teacher_logits)).pow(2).mean(dim=1)
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets),
                "mse": self.alpha * mse,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("mse_kd", MSELogitKD)
