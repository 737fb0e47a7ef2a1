"""Data Selection's split (the paper's Algorithm 1, docs/methods.md §6): which samples go to the teacher."""

from __future__ import annotations

import torch
from torch import Tensor


def select(scores: Tensor | None, fraction: float, order: str, seed: int, num_samples: int) -> Tensor:
    """The D_t mask: ``round(fraction·N)`` samples with the highest / lowest scores, or a random subset.

    Ties are broken by sample index (stable sort), so the split is a pure function of its inputs.
    """
    count = int(round(fraction * num_samples))
    if order == "random":
        chosen = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))[:count]
    else:
        assert scores is not None
        ranked = torch.sort(scores.double().cpu(), descending=(order == "highest"), stable=True).indices
        chosen = ranked[:count]
    mask = torch.zeros(num_samples, dtype=torch.bool)
    mask[chosen] = True
    return mask
