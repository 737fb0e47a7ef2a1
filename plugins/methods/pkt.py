"""PKT: match the student's and teacher's pairwise similarity distributions of pooled features.

Passalis & Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer", ECCV 2018.
Instead of matching features directly (which needs equal widths or a regressor), PKT turns each
batch's pooled features into a conditional probability distribution over the other samples and
minimises the KL divergence between the teacher's and the student's distributions. It is
width-agnostic and has no trainable parts of its own. The formula and defaults: docs/methods.md §4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    StepInputs,
    ce_and_kd_terms,
    hookimpl,
    upcast,
)


def similarity_distribution(features: Tensor, eps: float = 1e-7) -> Tensor:
    """Row-stochastic B×B matrix P from the cosine similarities of the rows of ``features``.

    Rows are L2-normalised (``x / (‖x‖ + eps)``; a NaN produced by bad input is set to 0), the cosine
    similarity ``s`` is mapped to ``[0, 1]`` by ``(s + 1) / 2`` (the paper's cosine kernel) and each row
    is divided by its sum. Computed in at least fp32 with autocast off, since the matrix product would
    otherwise run in bf16 and the loss is multiplied by a large β.
    """
    x = upcast(features).flatten(1)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
        x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
        sim = (x @ x.transpose(0, 1) + 1.0) / 2.0
        return sim / sim.sum(dim=1, keepdim=True)


def pkt_loss(student_features: Tensor, teacher_features: Tensor, eps: float = 1e-7) -> Tensor:
    """``mean over B×B of P_t · log((P_t + eps) / (P_s + eps))`` (a KL divergence, averaged over entries)."""
    p_s = similarity_distribution(student_features, eps)
    p_t = similarity_distribution(teacher_features, eps)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


class PKT(DistillationMethod):
    """Probabilistic Knowledge Transfer (Passalis & Tefas, ECCV 2018): γ·CE + β·KL of similarity maps.

    Uses the pooled features (the last entry of the feature list), so student and teacher widths may
    differ. The loss is relational over the whole batch, so it is a batch term (docs/methods.md §6: with
    Data Selection it still uses every sample of the batch). β=30000 as in RepDistiller; ``alpha``
    optionally adds Hinton KD at temperature ``T`` (off by default, docs/methods.md §4).
    """

    needs_features = True
    owns_logit_loss = False

    def __init__(
        self,
        beta: float = 30000.0,
        gamma: float = 1.0,
        eps: float = 1e-7,
        alpha: float = 0.0,
        T: float = 4.0,
    ) -> None:
        super().__init__()
        self.beta, self.gamma, self.eps = float(beta), float(gamma), float(eps)
        self.alpha, self.T = float(alpha), float(T)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.student_feats is not None and step.teacher_feats is not None
        loss = pkt_loss(step.student_feats[-1], step.teacher_feats[-1], self.eps)
        sample = ce_and_kd_terms(step, self.gamma, self.alpha, self.T)
        return LossTerms(sample=sample, batch={"pkt": self.beta * loss})


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("pkt", PKT)
