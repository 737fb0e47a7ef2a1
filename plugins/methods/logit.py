"""Built-in output-level methods: plain cross-entropy, Hinton KD, and MSE logit matching.

Registered through the ``kdbench`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from kdbench.hookspecs import hookimpl
from kdbench.methods import (
    DistillationMethod,
    LossTerms,
    StepInputs,
    cross_entropy_per_sample,
    kl_per_sample,
    upcast,
)


class CrossEntropy(DistillationMethod):
    """Train the student on ground truth only: the student-from-scratch baseline and teacher training."""

    uses_teacher = False

    def loss_terms(self, step: StepInputs) -> LossTerms:
        return LossTerms(sample={"ce": cross_entropy_per_sample(step.student_logits, step.targets)})


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
def kdbench_register_methods(register):
    register("ce", CrossEntropy)
    register("kd", HintonKD)
    register("mse_kd", MSELogitKD)
