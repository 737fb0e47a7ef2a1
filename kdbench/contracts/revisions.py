"""The label-revision contract, and the paper's default Label Revision settings (defined here once).

A revision strategy rewrites the teacher's probabilities with the ground truth. The paper's strategy
(Eq. 7–9, docs/methods.md §5) mixes in the one-hot label just enough to make the label the argmax:
``p = β·pt + (1−β)·e_y`` with ``β = η / (pt_max − pt_y + 1)``, η < 1.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

# the paper's defaults live where the plan and the tables read them without torch; a plugin finds them here too
from kdbench.contracts.names import DEFAULT_ETA, DEFAULT_LAMBDA1, DEFAULT_LAMBDA2, DEFAULT_STRATEGY

__all__ = ["DEFAULT_ETA", "DEFAULT_LAMBDA1", "DEFAULT_LAMBDA2", "DEFAULT_STRATEGY", "LabelRevision", "one_hot_like"]


class LabelRevision:
    """Base class of revision plugins: ``revise(teacher_probs, targets) -> revised_probs``."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError


def one_hot_like(probs: Tensor, targets: Tensor) -> Tensor:
    """The one-hot labels, in the dtype and shape of ``probs``."""
    return F.one_hot(targets, probs.shape[1]).to(probs.dtype)
