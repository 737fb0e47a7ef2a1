"""Exact KNN-Shapley against brute-force Shapley values of the K-NN utility (Jia et al. 2019)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from kdbench.errors import KdbenchError
from kdbench_plugins.estimators._shapley import knn_shapley

F64 = torch.float64


def utility(subset: tuple[int, ...], order: list[int], labels: list[int], y: int, k: int) -> float:
    """U(S) = (1/K) · #{correct labels among S's min(K, |S|) nearest}; ``order`` ranks points by distance."""
    nearest = [j for j in order if j in subset][:k]
    return sum(labels[j] == y for j in nearest) / k


def brute_force(train: torch.Tensor, labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor, k: int):
    """Shapley values by the subset formula φ_j = Σ_S |S|!(N−|S|−1)!/N! · (U(S∪{j}) − U(S)), averaged over val."""
    n = len(labels)
    lab = labels.tolist()
    values = [0.0] * n
    for x, y in zip(val, val_labels.tolist(), strict=True):
        order = sorted(range(n), key=lambda j: float(torch.linalg.vector_norm(train[j] - x)))
        for j in range(n):
            others = [i for i in range(n) if i != j]
            for size in range(n):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                for subset in itertools.combinations(others, size):
                    gain = utility(subset + (j,), order, lab, y, k) - utility(subset, order, lab, y, k)
                    values[j] += weight * gain
    return torch.tensor(values, dtype=F64) / len(val_labels)


def problem(n: int, m: int, seed: int, classes: int = 3, d: int = 2):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=F64),
        torch.randint(0, classes, (n,), generator=g),
        torch.randn(m, d, generator=g, dtype=F64),
        torch.randint(0, classes, (m,), generator=g),
    )


@pytest.mark.parametrize(("n", "k"), [(8, 1), (8, 3), (7, 5), (6, 10), (1, 2)])
def test_matches_brute_force_shapley(n, k):
    train, labels, val, val_labels = problem(n, 4, seed=n * 10 + k)
    expected = brute_force(train, labels, val, val_labels, k)
    got = knn_shapley(train, labels, val, val_labels, k=k, chunk_size=3)  # chunks of validation points
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 5, 50])
def test_efficiency_values_sum_to_full_set_utility(k):
    train, labels, val, val_labels = problem(200, 37, seed=k, classes=4, d=5)
    values = knn_shapley(train, labels, val, val_labels, k=k)
    dist = torch.cdist(val, train)
    nearest = dist.argsort(dim=1)[:, :k]
    full_utility = (labels[nearest] == val_labels[:, None]).to(F64).sum(dim=1) / k  # U(∅) = 0
    assert abs(float(values.sum()) - float(full_utility.mean())) < 1e-12


def test_chunking_does_not_change_values():
    train, labels, val, val_labels = problem(300, 50, seed=5, classes=5, d=4)
    one = knn_shapley(train, labels, val, val_labels, k=3, chunk_size=1)
    all_at_once = knn_shapley(train, labels, val, val_labels, k=3, chunk_size=50)
    torch.testing.assert_close(one, all_at_once, rtol=0, atol=1e-15)


def test_bad_k_is_a_user_error():
    train, labels, val, val_labels = problem(5, 2, seed=0)
    with pytest.raises(KdbenchError):
        knn_shapley(train, labels, val, val_labels, k=0)
