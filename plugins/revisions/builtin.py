"""Built-in label-revision strategies: the paper's (fixed or per-sample η), DTD-LA's swap, one-hot, none."""

from __future__ import annotations

import torch
from torch import Tensor

from kdbench.errors import KdbenchError
from kdbench.hookspecs import hookimpl
from kdbench.revision import LabelRevision, one_hot_like

PER_SAMPLE_ETA = ("ptmax", "pttar")


class PaperRevision(LabelRevision):
    """Eq. (7–9): p = β·pt + (1−β)·e_y, β = η/(pt_max − pt_y + 1); η fixed (< 1), or "ptmax" / "pttar"."""

    def __init__(self, eta: float | str = 0.8) -> None:
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


class SwapRevision(LabelRevision):
    """DTD-LA's label adjustment: where the teacher is wrong, swap its top probability with the label's."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        top = teacher_probs.argmax(dim=1)
        rows = torch.arange(teacher_probs.shape[0], device=teacher_probs.device)
        revised = teacher_probs.clone()
        revised[rows, top] = teacher_probs[rows, targets]
        revised[rows, targets] = teacher_probs[rows, top]
        return revised


class OneHotRevision(LabelRevision):
    """Replace the teacher's probabilities by the one-hot label."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        return one_hot_like(teacher_probs, targets)


class NoRevision(LabelRevision):
    """Keep the teacher's probabilities as they are (Eq. 11's split without any revision)."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        return teacher_probs


@hookimpl
def kdbench_register_revisions(register):
    register("paper", PaperRevision)
    register("swap", SwapRevision)
    register("onehot", OneHotRevision)
    register("none", NoRevision)
