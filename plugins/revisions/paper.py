"""The paper's Label Revision (Eq. 7–9, docs/methods.md §5), with η fixed or set per sample."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from kdbench.contracts import LabelRevision, hookimpl, one_hot_like
from kdbench.contracts.revisions import DEFAULT_ETA, DEFAULT_STRATEGY
from kdbench.errors import KdbenchError

PER_SAMPLE_ETA = ("ptmax", "pttar")


class PaperRevision(LabelRevision):
    """Eq. (7–9): p = β·pt + (1−β)·e_y, β = η/(pt_max − pt_y + 1); η fixed (< 1), or "ptmax" / "pttar"."""

    def __init__(self, eta: float | str = DEFAULT_ETA) -> None:
        if isinstance(eta, str):
            if eta not in PER_SAMPLE_ETA:
                raise KdbenchError(f"revision 'paper': eta must be a number < 1, 'ptmax' or 'pttar', not {eta!r}")
        elif not 0 <= float(eta) < 1:
            raise KdbenchError(f"revision 'paper': eta must be in [0, 1) so the label stays the argmax, not {eta}")
        self.eta = eta

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        pt_max = teacher_probs.max(dim=1).values
        pt_y = teacher_probs.gather(1, targets[:, None]).squeeze(1)
        if self.eta == "ptmax":
            eta = pt_max
        elif self.eta == "pttar":
            eta = pt_y
        else:
            eta = torch.full_like(pt_max, float(self.eta))
        beta = (eta / (pt_max - pt_y + 1))[:, None]
        return beta * teacher_probs + (1 - beta) * one_hot_like(teacher_probs, targets)


@hookimpl
def kdbench_register_revisions(register: Callable[..., None]) -> None:
    register(DEFAULT_STRATEGY, PaperRevision)
