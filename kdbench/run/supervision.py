"""A run's supervision from its spec: Data Selection's D_t mask and Label Revision (docs/methods.md §5–7)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from kdbench.plan.spec import RunSpec
from kdbench.registry import Registry
from kdbench.run.scoring import Scorer, detection_of
from kdbench.store import SelectionRecord
from kdbench.train.revision_loss import RevisionLossConfig
from kdbench.train.selection import select
from kdbench.train.supervision import Supervision


@dataclass(frozen=True)
class RunSupervision:
    """A run's Supervision, what its record says about the split (None without Data Selection), and with
    ``mode: drop`` the training samples it keeps (a bool mask; None: all of them)."""

    supervision: Supervision
    selection: SelectionRecord | None
    keep: Tensor | None = None


def build_supervision(spec: RunSpec, registry: Registry, scorer: Scorer, num_train: int,
                      flipped: Tensor | None = None) -> RunSupervision:
    """The run's supervision and split; with label noise (``flipped``), the record also says how well the
    selection's scores flag the flipped labels. With ``mode: drop`` the selected samples are not sent to the
    teacher but removed: the run trains on the others with the method as it is, and no D_t mask."""
    mask, selection = None, None
    if spec.selection is not None:
        sel = spec.selection
        stored = None
        if sel.estimator is not None:
            assert spec.teacher is not None  # guarded when the suite was expanded
            stored = scorer.scores(spec.teacher, sel.estimator)
        seed = sel.seed if sel.seed is not None else spec.seed
        mask = select(stored.values if stored else None, sel.fraction, sel.order, seed, num_train, sel.stream)
        removed = int(mask.sum()) if sel.mode == "drop" else None
        selection = SelectionRecord(teacher_samples=int(mask.sum()), samples=num_train, removed_samples=removed)
        if stored is not None:
            assert sel.estimator is not None  # the scores are its estimator's
            selection = SelectionRecord(
                teacher_samples=int(mask.sum()),
                samples=num_train,
                removed_samples=removed,
                scores_key=stored.key,
                estimator_info=stored.info,
                score_seconds=stored.seconds,
                teacher_correct_in_dt=float(stored.teacher_correct[mask].double().mean()),
                teacher_correct_in_ds=float(stored.teacher_correct[~mask].double().mean()) if (~mask).any() else None,
                detection=detection_of(registry.get("estimator", sel.estimator.name), stored, flipped)
                if flipped is not None else None,
            )
    revision, config, in_method = None, RevisionLossConfig(), False
    if spec.revision is not None:
        rev = spec.revision
        revision = registry.get("revision", rev.strategy.name).factory(**rev.strategy.params)
        config = RevisionLossConfig(rev.lambda1, rev.lambda2, rev.reduction, rev.temperature)
        in_method = rev.in_method
    if spec.selection is not None and spec.selection.mode == "drop":
        assert mask is not None
        return RunSupervision(Supervision(None, revision, config, revision_in_method=in_method), selection, ~mask)
    return RunSupervision(Supervision(mask, revision, config, revision_in_method=in_method), selection)
