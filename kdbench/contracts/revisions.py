"""The label-revision contract, and the paper's default Label Revision settings (defined here once).

A revision strategy rewrites the teacher's probabilities with the ground truth. The paper's strategy
(Eq. 7–9, docs/methods.md §5) mixes in the one-hot label just enough to make the label the argmax:
``p = β·pt + (1−β)·e_y`` with ``β = η / (pt_max − pt_y + 1)``, η < 1.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

#: The paper's η (Tables III, V, VI, VIII) and Eq. (11)'s λ1, λ2 (each table holds the other at 1).
DEFAULT_ETA = 0.8
DEFAULT_LAMBDA1 = 1.0
DEFAULT_LAMBDA2 = 1.0
#: The strategy a suite's ``revision:`` uses when it names none.
DEFAULT_STRATEGY = "paper"


class LabelRevision:
    """Base class of revision plugins: ``revise(teacher_probs, targets) -> revised_probs``."""

    def revise(self, teacher_probs: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError


def one_hot_like(probs: Tensor, targets: Tensor) -> Tensor:
    """The one-hot labels, in the dtype and shape of ``probs``."""
    return F.one_hot(targets, probs.shape[1]).to(probs.dtype)
