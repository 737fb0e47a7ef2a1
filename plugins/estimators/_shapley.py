"""Exact KNN-Shapley values (Jia et al., 2019, "Efficient task-specific data valuation for nearest
neighbor algorithms", Theorem 1), vectorised over validation points.

The closed-form recursion of docs/methods.md §6a, unrolled from the farthest point, is a reversed cumulative
sum, so a whole chunk of validation points takes a few tensor operations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kdbench.errors import KdbenchError

# Validation points per chunk are chosen so that each B×N temporary has about this many elements
# (2**22 · 8 B = 32 MiB; a chunk holds ~6 of them).
_CHUNK_ELEMENTS = 2**22


def knn_shapley(
    train_features: Tensor,
    train_labels: Tensor,
    val_features: Tensor,
    val_labels: Tensor,
    k: int = 5,
    chunk_size: int | None = None,
) -> Tensor:
    """Exact KNN-Shapley value of every training point (N, float64), averaged over validation points.

    Distances are Euclidean (``torch.cdist``); ties are broken by training index (stable sort).
    ``chunk_size`` validation points are processed at a time (default: sized to ~32 MiB temporaries,
    so N_train = 50k × N_val = 5k runs in a few hundred MiB).
    """
    if k < 1:
        raise KdbenchError(f"knn-shapley needs k >= 1, got {k}")
    n = int(train_labels.shape[0])
    m_val = int(val_labels.shape[0])
    if n == 0 or m_val == 0:
        raise KdbenchError("knn-shapley needs at least one training and one validation sample")
    device = train_features.device
    train = train_features.to(torch.float64)
    val = val_features.to(device=device, dtype=torch.float64)
    train_labels = train_labels.to(device)
    val_labels = val_labels.to(device)
    rank = torch.arange(1, n, dtype=torch.float64, device=device)  # i = 1 … N−1
    weight = torch.clamp(rank, max=float(k)) / (rank * k)  # min(K, i) / (i·K)
    base = min(k, n) / (n * k)
    rows = chunk_size or max(1, _CHUNK_ELEMENTS // n)
    values = torch.zeros(n, dtype=torch.float64, device=device)
    for start in range(0, m_val, rows):
        dist = torch.cdist(val[start : start + rows], train)
        order = torch.argsort(dist, dim=1, stable=True)
        del dist
        match = (train_labels[order] == val_labels[start : start + rows, None]).to(torch.float64)
        steps = (match[:, :-1] - match[:, 1:]) * weight  # term i, for i = 1 … N−1
        s = torch.empty_like(match)
        s[:, -1] = match[:, -1] * base
        s[:, :-1] = s[:, -1:] + steps.flip(1).cumsum(dim=1).flip(1)
        values.index_add_(0, order.reshape(-1), s.reshape(-1))
    return values / m_val
