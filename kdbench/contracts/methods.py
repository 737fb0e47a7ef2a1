"""The contract between a distillation method and the one training loop (``kdbench.train.engine``).

A method declares what it needs (teacher or not, intermediate features, dataset indices, full
batches) and returns named loss terms of two kinds:

* ``sample`` terms: the output-level supervision, one value per sample (CE, KD's KL, ...). The engine
  owns how these combine with Data Selection and Label Revision (docs/methods.md §7): samples outside the
  teacher-supervised subset D_t get plain cross-entropy instead, and Label Revision replaces them on
  D_t with the paper's Eq. (11). A method never has to know either exists.
* ``batch`` terms: scalars computed over the whole batch (feature, relational and contrastive
  losses); they are added as they are.

Every term is already multiplied by its weight (γ, α, β). Extra trainable modules (regressors,
embeddings, learnable temperatures) are created in :meth:`DistillationMethod.setup` as submodules,
so the engine puts them in the student's optimizer with the same schedule.

A method may also give the student its own head (``provides_head``; SimKD: its projector and the teacher's
reused, frozen classifier). The student is then judged through that head wherever it is judged: every
evaluation (:meth:`DistillationMethod.head_logits`), the output-level supervision the engine adds (Data
Selection's CE) and the training top-1 (``LossTerms.head_logits``, computed with the loss so the head runs
once a step), and the record says so (``evaluated_head: method``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from kdbench.contracts.losses import cross_entropy_per_sample, kl_per_sample, upcast
from kdbench.contracts.names import SCRATCH_METHOD

__all__ = ["SCRATCH_METHOD", "DistillationMethod", "LossTerms", "MethodContext", "PairInfo", "StepInputs",
           "ce_and_kd_terms"]


@dataclass(frozen=True)
class PairInfo:
    """Which teacher/student a method will run on; used to resolve pair-dependent defaults."""

    student: str
    teacher: str | None


@dataclass(frozen=True)
class MethodContext:
    """Everything a method may look at when it builds its extra modules."""

    pair: PairInfo
    num_classes: int
    num_train: int
    batch_size: int
    epochs: int
    student_feature_shapes: list[tuple[int, ...]] = field(default_factory=list)
    teacher_feature_shapes: list[tuple[int, ...]] = field(default_factory=list)
    teacher_classifier: nn.Linear | None = None  # frozen: keep it out of the method's own parameters
    train_labels: Tensor | None = None  # labels of the training split by dataset index (e.g. CRD's negatives)


@dataclass
class StepInputs:
    """One training step's tensors, as the engine computed them for the method."""

    student_logits: Tensor
    targets: Tensor
    epoch: int  # 1-indexed
    indices: Tensor | None = None  # dataset indices of the samples, for methods that declare needs_indices
    teacher_logits: Tensor | None = None
    student_feats: list[Tensor] | None = None
    teacher_feats: list[Tensor] | None = None
    # Label Revision for a method that owns its logit loss (docs/methods.md §7): ``revise_teacher(probs,
    # targets)`` rewrites the teacher distribution the method consumes, at the method's own temperature.
    revise_teacher: Callable[[Tensor, Tensor], Tensor] | None = None
    # For a method that declares ``needs_strong_view``: the student's and the teacher's logits on the strong view
    # of the same rows (``kdbench.train.strong_view``); see :meth:`strong_view`.
    student_logits_strong: Tensor | None = None
    teacher_logits_strong: Tensor | None = None

    def strong_view(self) -> StepInputs:
        """This step on the strong view: the same rows, targets and revision, the strong view's logits in place of
        the weak view's (no features), so ``teacher_target`` judges right and wrong by the strong view's teacher."""
        if self.student_logits_strong is None:
            raise ValueError("this step has no strong view: the method must declare needs_strong_view")
        return StepInputs(student_logits=self.student_logits_strong, targets=self.targets, epoch=self.epoch,
                          indices=self.indices, teacher_logits=self.teacher_logits_strong,
                          revise_teacher=self.revise_teacher)

    def teacher_target(self, teacher_probs: Tensor) -> Tensor:
        """The teacher distribution a logit loss should use (docs/methods.md §7): under Label Revision, revised
        where the teacher's prediction misses the label and as given where it is right ("the remaining right
        predictions do not require revision", paper Eqs. 10–11); without LR, as given.

        Right or wrong is the argmax of the teacher's logits (of ``teacher_probs`` without them), the test
        Eq. (11) makes, so a method's temperature never moves a sample between the two."""
        if self.revise_teacher is None:
            return teacher_probs
        scores = self.teacher_logits if self.teacher_logits is not None else teacher_probs
        wrong = scores.argmax(dim=1) != self.targets
        return torch.where(wrong[:, None], self.revise_teacher(teacher_probs, self.targets), teacher_probs)


@dataclass
class LossTerms:
    """Named, weighted loss terms: per-sample vectors and whole-batch scalars."""

    sample: dict[str, Tensor] = field(default_factory=dict)
    batch: dict[str, Tensor] = field(default_factory=dict)
    # The student's logits on this batch through the method's own head (methods with ``provides_head`` must
    # give them): the engine's output-level supervision and training top-1 use them, not ``student_logits``.
    head_logits: Tensor | None = None

    def per_sample_total(self, like: Tensor) -> Tensor:
        total = torch.zeros(like.shape[0], dtype=upcast(like).dtype, device=like.device)
        for value in self.sample.values():
            total = total + upcast(value)
        return total

    def batch_total(self, like: Tensor) -> Tensor:
        total = torch.zeros((), dtype=upcast(like).dtype, device=like.device)
        for value in self.batch.values():
            total = total + upcast(value)
        return total


class DistillationMethod(nn.Module):
    """Base class of every method plugin. Subclass, declare needs, implement :meth:`loss_terms`."""

    uses_teacher: ClassVar[bool] = True
    needs_features: ClassVar[bool] = False
    # True: ``step.indices`` carries the dataset index of every sample (CRD's memory banks); else None.
    needs_indices: ClassVar[bool] = False
    full_batches_only: ClassVar[bool] = False
    # With ``needs_features``: take the student's / the teacher's stage features before their final activation
    # (``model(x, features=True, preact=True)``, kdbench.contracts.models) instead of after it. Plain attributes,
    # not ClassVars, so that a method's parameter may set them (ReviewKD's ``student_preact``).
    student_preact: bool = False
    teacher_preact: bool = False
    # True for methods whose logit loss is their own (DKD, CTKD, DTD-LA): Label Revision does not replace it
    # with Eq. (11) but revises the teacher distribution it consumes (``StepInputs.teacher_target``,
    # docs/methods.md §7).
    owns_logit_loss: ClassVar[bool] = False
    # True: every training batch also comes as a strong view of the same rows (``kdbench.train.strong_view``), and
    # the step carries the student's and the teacher's logits on it (``StepInputs.strong_view``; MLKD).
    needs_strong_view: ClassVar[bool] = False
    # True: the student is judged through the method's own head (:meth:`head_logits`, ``LossTerms.head_logits``)
    # instead of its own classifier, in every evaluation and in the record (``evaluated_head: method``).
    provides_head: ClassVar[bool] = False
    # False for a method with no output-level supervision from the teacher (SimKD): Label Revision has nothing
    # to revise, and a suite that asks for it is refused when it is loaded (docs/methods.md §7).
    accepts_label_revision: ClassVar[bool] = True

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any], pair: PairInfo) -> dict[str, Any]:
        """Fill pair-dependent defaults (e.g. DKD's β) so the run key records the values used."""
        return dict(params)

    def setup(self, ctx: MethodContext) -> None:
        """Create extra trainable modules from the real feature shapes. Default: none."""

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Per-epoch schedules (warm-ups, gradient-reversal ramps). ``epoch`` is 1-indexed."""

    def loss_terms(self, step: StepInputs) -> LossTerms:
        raise NotImplementedError

    def head_logits(self, student_feats: list[Tensor], student_logits: Tensor) -> Tensor:
        """The logits an evaluation judges the student by, from its ``features=True`` output. Default: the
        student's own logits; a method with ``provides_head`` returns its head's, as its ``loss_terms`` does."""
        return student_logits


def ce_and_kd_terms(step: StepInputs, gamma: float, alpha: float = 0.0, T: float = 4.0) -> dict[str, Tensor]:
    """The output-level sample terms most methods share: ``γ·CE`` plus, when ``alpha`` is set, Hinton's
    ``α·T²·KL(σ_T(zt) ‖ σ_T(zs))``. Feature methods keep these next to their own batch term."""
    terms = {"ce": gamma * cross_entropy_per_sample(step.student_logits, step.targets)}
    if alpha:
        if step.teacher_logits is None:
            raise ValueError("a KD term (alpha > 0) needs the teacher's logits")
        terms["kd"] = alpha * T**2 * kl_per_sample(step.teacher_logits, step.student_logits, T)
    return terms
