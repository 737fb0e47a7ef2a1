"""Loss helpers that method plugins share; every one returns a value per sample (no batch reduction).

Losses are computed in at least fp32, also under bf16 autocast, so a method never has to think about
the engine's precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """Losses are computed in at least fp32, also under bf16 autocast; fp64 stays fp64 (tests)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def cross_entropy_per_sample(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(upcast(logits), targets, reduction="none")


def kl_per_sample(teacher_logits: Tensor, student_logits: Tensor, temperature: float) -> Tensor:
    """``KL(σ_T(zt) ‖ σ_T(zs))`` summed over classes, one value per sample (no T² factor)."""
    log_p_s = F.log_softmax(upcast(student_logits) / temperature, dim=1)
    log_p_t = F.log_softmax(upcast(teacher_logits) / temperature, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)


def kl_from_target(target_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """``KL(q ‖ p_s) = Σ q·(log q − log p_s)`` per sample for a target given as probabilities (a revised
    teacher distribution, which may hold exact zeros: ``0·log 0`` counts as 0)."""
    q = target_probs.to(student_log_probs.dtype)
    kl: Tensor = (torch.special.xlogy(q, q) - q * student_log_probs).sum(dim=1)
    return kl


#: Logit standardization's epsilon (Sun et al., CVPR 2024): added to the standard deviation, as in the official
#: code (``normalize`` in mdistiller/distillers/KD.py of sunshangquan/logit-standardization-KD).
LOGIT_STD_EPS = 1e-7


def standardize_logits(logits: Tensor, base_temperature: float = 1.0) -> Tensor:
    """Logit standardization (LS; Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024):
    each row Z-scored over its classes, ``(z − mean(z)) / (std(z) + 1e-7)`` with the unbiased (n − 1) standard
    deviation as the official code takes it, then divided by ``base_temperature`` (docs/methods.md, LS).

    A method then forms its softmax from the result as it would from ``z / T``: ``standardize_logits(z, T)`` takes
    the place of ``z / T``. Computed in at least fp32 (``upcast``)."""
    z = upcast(logits)
    mean = z.mean(dim=1, keepdim=True)
    std = z.std(dim=1, keepdim=True)
    standardized: Tensor = (z - mean) / (std + LOGIT_STD_EPS)
    return standardized / base_temperature
