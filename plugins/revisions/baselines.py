"""Revision strategies to compare the paper's against (docs/methods.md §5): DTD-LA's swap, one-hot, none."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from kdbench.contracts import LabelRevision, hookimpl, one_hot_like


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
def kdbench_register_revisions(register: Callable[..., None]) -> None:
    register("swap", SwapRevision)
    register("onehot", OneHotRevision)
    register("none", NoRevision)
