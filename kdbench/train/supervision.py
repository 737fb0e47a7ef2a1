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
from kdbench.train.revision_loss import RevisionLossConfig, revision_terms

#: A part of a step's loss: its mean and the number of the batch's samples it averages over (None: all of them).
LossPart = tuple[Tensor, Tensor | None]
#: The parts of the loss without Eq. (11) (the method's per-sample terms; its batch terms) and with it.
PLAIN_PARTS = ("_per_sample", "_batch")
REVISION_PARTS = ("ce", "lr_right", "lr_wrong", "_batch")


@dataclass(frozen=True)
class BatchLoss:
    """A step's loss as a sum of means, each over its own subset of the batch, and the terms to log.

    One process minimises :meth:`total`. The ranks of a DDP run each hold a slice of the global batch; with
    each part's subset size they weight their means so that the gradient averaged over the ranks is the
    gradient of the global batch's loss (``kdbench.train.engine``, docs/methods.md §1). Parts whose name
    does not start with ``_`` are logged too.
    """

    parts: dict[str, LossPart]
    logged: dict[str, Tensor]  # per-sample vectors, or scalars that average over every sample of the batch

    def total(self) -> Tensor:
        means = [mean for mean, _ in self.parts.values()]
        total = means[0]
        for mean in means[1:]:
            total = total + mean
        return total

    def named_terms(self) -> dict[str, Tensor]:
        """Every term to log by name: the logged parts' means and the batch-wide terms."""
        return {**{k: mean for k, (mean, _) in self.parts.items() if not k.startswith("_")}, **self.logged}


@dataclass(frozen=True)
class Supervision:
    """What supervises each sample of a run: the teacher (D_t) or ground truth, and how LR revises it."""

    distill_mask: Tensor | None = None  # over the training set; True = D_t (teacher-supervised)
    revision: LabelRevision | None = None
    revision_config: RevisionLossConfig = field(default_factory=RevisionLossConfig)
    revision_in_method: bool = False  # the method owns its logit loss: revise its teacher target, not Eq. (11)

    @property
    def uses_eq11(self) -> bool:
        return self.revision is not None and not self.revision_in_method

    @property
    def part_names(self) -> tuple[str, ...]:
        """The names of :attr:`BatchLoss.parts`, in order: the same for every step of a run."""
        return REVISION_PARTS if self.uses_eq11 else PLAIN_PARTS

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
    ) -> BatchLoss:
        """The loss to minimise, as parts over subsets of the batch, and the named terms to log."""
        distill = self.distill_mask[indices] if self.distill_mask is not None else None
        batch_part = (terms.batch_total(student_logits), None)
        if not self.uses_eq11:
            # Data Selection: D_t gets the method's per-sample terms, D_s plain CE.
            per_sample = terms.per_sample_total(student_logits)
            if distill is not None:
                per_sample = torch.where(distill, per_sample, cross_entropy_per_sample(student_logits, targets))
            parts: dict[str, tuple[Tensor, Tensor | None]] = {"_per_sample": (per_sample.mean(), None),
                                                              "_batch": batch_part}
            return BatchLoss(parts, {**terms.sample, **terms.batch})
        if teacher_logits is None:
            raise RuntimeError("Label Revision needs the teacher's logits")  # guarded at suite validation
        assert self.revision is not None
        eq11 = revision_terms(student_logits, teacher_logits, targets, self.revision, self.revision_config, distill)
        return BatchLoss({**eq11, "_batch": batch_part}, dict(terms.batch))
