"""How a batch's output-level supervision is formed: Data Selection and Label Revision (docs/methods.md §6–7).

The engine hands every batch to a :class:`Supervision`. Without DS or LR, the loss is the method's
per-sample terms averaged over the batch plus its batch terms. With DS, samples outside D_t get plain
CE instead of the method's per-sample terms. With LR, the method's per-sample terms are replaced by
Eq. (11) (see ``kdbench.train.revision_loss``), except for a method that owns its logit loss: there the
revision rewrites the teacher distribution the method consumes (:attr:`Supervision.teacher_revision`) and
the method's terms are combined as without LR. A method's batch terms (feature losses) are always kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from kdbench.contracts import LabelRevision, LossTerms, cross_entropy_per_sample
from kdbench.train.revision_loss import RevisionLossConfig, revision_loss


def combine_loss(terms: LossTerms, logits: Tensor, targets: Tensor, distill: Tensor | None) -> Tensor:
    """Batch loss under Data Selection only: D_t gets the method's per-sample terms, D_s plain CE."""
    per_sample = terms.per_sample_total(logits)
    if distill is not None:
        per_sample = torch.where(distill, per_sample, cross_entropy_per_sample(logits, targets))
    return per_sample.mean() + terms.batch_total(logits)


@dataclass(frozen=True)
class Supervision:
    """What supervises each sample of a run: the teacher (D_t) or ground truth, and how LR revises it."""

    distill_mask: Tensor | None = None  # over the training set; True = D_t (teacher-supervised)
    revision: LabelRevision | None = None
    revision_config: RevisionLossConfig = field(default_factory=RevisionLossConfig)
    revision_in_method: bool = False  # the method owns its logit loss: revise its teacher target, not Eq. (11)

    @property
    def teacher_revision(self) -> Callable[[Tensor, Tensor], Tensor] | None:
        """What the method applies to its teacher distribution (None: no revision inside the method)."""
        return self.revision.revise if self.revision is not None and self.revision_in_method else None

    def to(self, device: str | torch.device) -> Supervision:
        if self.distill_mask is None:
            return self
        return replace(self, distill_mask=self.distill_mask.to(device=device, dtype=torch.bool))

    def batch_loss(
        self,
        terms: LossTerms,
        student_logits: Tensor,
        teacher_logits: Tensor | None,
        targets: Tensor,
        indices: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The scalar to minimise and the named terms to log."""
        distill = self.distill_mask[indices] if self.distill_mask is not None else None
        if self.revision is None or self.revision_in_method:
            return combine_loss(terms, student_logits, targets, distill), {**terms.sample, **terms.batch}
        if teacher_logits is None:
            raise RuntimeError("Label Revision needs the teacher's logits")  # guarded at suite validation
        out, parts = revision_loss(
            student_logits, teacher_logits, targets, self.revision, self.revision_config, distill
        )
        return out + terms.batch_total(student_logits), {**parts, **terms.batch}
