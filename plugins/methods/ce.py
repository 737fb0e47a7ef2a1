"""Cross-entropy on the ground truth alone: the student-from-scratch baseline, and how teachers train."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import (
    SCRATCH_METHOD,
    DistillationMethod,
    LossTerms,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
)


class CrossEntropy(DistillationMethod):
    """Train the student on ground truth only: the student-from-scratch baseline and teacher training."""

    uses_teacher = False

    def loss_terms(self, step: StepInputs) -> LossTerms:
        return LossTerms(sample={"ce": cross_entropy_per_sample(step.student_logits, step.targets)})


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register(SCRATCH_METHOD, CrossEntropy)
