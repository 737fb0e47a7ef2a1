"""CRD's negatives: K distinct other-class samples per anchor, a uniform K-subset, as RepDistiller draws them.

Both strategies of ``CRD.sample_negatives`` (dense random keys, in one block or in row blocks, and sparse
i.i.d. draws with repeats redrawn) are forced through the module constants and checked for the same
properties; each test asserts that the strategy it names really ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy import stats

from kdbench.contracts import MethodContext, PairInfo
from kdbench_plugins.methods import crd as crd_module
from kdbench_plugins.methods.crd import CRD, negative_strategy

# 80 samples of 5 classes of unequal sizes, shuffled: 74, 70, 66, 60 and 50 other-class candidates.
SIZES = (6, 10, 14, 20, 30)
UNEQUAL = torch.repeat_interleave(torch.arange(5), torch.tensor(SIZES))[
    torch.randperm(sum(SIZES), generator=torch.Generator().manual_seed(0))
]
EQUAL = torch.arange(60) % 4  # 45 candidates for every class: the unmasked dense path
K = 40  # 54-80 % of an anchor's candidates: a with-replacement draw repeats some in almost every row
STRATEGIES = ("dense", "dense-blocks", "sparse")


def context(labels: torch.Tensor) -> MethodContext:
    return MethodContext(
        pair=PairInfo("student", "teacher"),
        num_classes=int(labels.max()) + 1,
        num_train=len(labels),
        batch_size=16,
        epochs=1,
        student_feature_shapes=[(5,)],
        teacher_feature_shapes=[(6,)],
        train_labels=labels,
    )


def make_crd(labels: torch.Tensor = UNEQUAL, k: int = K, seed: int = 0) -> CRD:
    torch.manual_seed(seed)
    method = CRD(num_negatives=k)
    method.setup(context(labels))
    return method


@pytest.fixture(params=STRATEGIES)
def strategy(request, monkeypatch) -> Iterator[str]:
    """Forces one strategy through the module constants and checks afterwards that only it ran."""
    if request.param == "dense-blocks":  # blocks of 1 row (74 candidates) or 3 rows (45); sparse never allowed
        monkeypatch.setattr(crd_module, "DENSE_MAX_KEYS", 3 * 45)
        monkeypatch.setattr(crd_module, "SPARSE_MAX_FRACTION", 0.0)
    elif request.param == "sparse":  # dense never fits; sparse always allowed
        monkeypatch.setattr(crd_module, "DENSE_MAX_KEYS", 0)
        monkeypatch.setattr(crd_module, "SPARSE_MAX_FRACTION", 1.0)
    calls = {"dense": 0, "sparse": 0, "rows": []}
    dense, sparse = CRD._ranks_dense, CRD._ranks_sparse

    def count_dense(self, other, gen):
        calls["dense"] += 1
        calls["rows"].append(other.shape[0])
        return dense(self, other, gen)

    def count_sparse(self, other, gen):
        calls["sparse"] += 1
        return sparse(self, other, gen)

    monkeypatch.setattr(CRD, "_ranks_dense", count_dense)
    monkeypatch.setattr(CRD, "_ranks_sparse", count_sparse)
    yield request.param
    used = "sparse" if request.param == "sparse" else "dense"
    assert calls[used] > 0 and calls["sparse" if used == "dense" else "dense"] == 0, calls
    if request.param == "dense-blocks":
        assert max(calls["rows"]) <= 3
    elif request.param == "dense":
        assert max(calls["rows"]) > 3  # whole batches in one block


def assert_distinct_other_class(labels: torch.Tensor, indices: torch.Tensor, negatives: torch.Tensor, k: int) -> None:
    assert negatives.shape == (len(indices), k) and negatives.dtype == torch.long
    assert ((negatives >= 0) & (negatives < len(labels))).all()
    assert not (labels[negatives] == labels[indices].unsqueeze(1)).any()
    ordered = negatives.sort(dim=1).values
    repeats = (ordered[:, 1:] == ordered[:, :-1]).sum(dim=1)
    assert (repeats == 0).all(), f"rows with repeated negatives: {int((repeats > 0).sum())} of {len(indices)}"


@pytest.mark.parametrize("labels", [UNEQUAL, EQUAL], ids=["unequal-classes", "equal-classes"])
def test_negatives_are_distinct_and_never_of_the_anchor_class(strategy, labels):
    """Fails on the old with-replacement sampler: K = 40 of 45-74 candidates repeats some in nearly every row."""
    method = make_crd(labels)
    assert method.effective_negatives == K
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    for batch in (*order.split(16), order[:1], torch.zeros(7, dtype=torch.long)):  # 4-5 batches, 1 row, repeats
        assert_distinct_other_class(labels, batch, method.sample_negatives(batch), K)


def test_k_equal_to_the_candidate_count_takes_every_candidate(strategy):
    """The class with the fewest candidates (50) gets all of them in every row, in some order."""
    method = make_crd(k=50)
    assert method.effective_negatives == 50
    anchors = torch.nonzero(UNEQUAL == 4).flatten()
    negatives = method.sample_negatives(anchors)
    candidates = torch.nonzero(UNEQUAL != 4).flatten()
    assert torch.equal(negatives.sort(dim=1).values, candidates.expand(len(anchors), -1))
    assert_distinct_other_class(UNEQUAL, torch.arange(80), method.sample_negatives(torch.arange(80)), 50)


def uniformity_p_value(counts: np.ndarray, draws: int, k: int) -> float:
    """p-value of "each of the M candidates is in a uniform K-subset with probability K/M", from the counts
    over ``draws`` independent subsets.

    The counts of a without-replacement sampler have the multinomial covariance times (1 − K/M)·M/(M − 1);
    Pearson's statistic divided by that factor is χ²(M − 1) asymptotically. A with-replacement sampler has the
    multinomial covariance, so its statistic comes out inflated by about 1/(1 − K/M) and is rejected.
    """
    m = counts.size
    p = k / m
    statistic = stats.chisquare(counts, np.full(m, draws * p)).statistic / ((1 - p) * m / (m - 1))
    return float(stats.chi2.sf(statistic, m - 1))


def candidate_counts(labels: torch.Tensor, anchor: int, negatives: torch.Tensor) -> np.ndarray:
    """How often each other-class candidate of ``anchor`` appears in ``negatives`` [R, K]."""
    candidates = torch.nonzero(labels != labels[anchor]).flatten()
    counts = torch.bincount(negatives.flatten(), minlength=len(labels))
    assert counts.sum() == counts[candidates].sum()  # nothing outside the candidates
    return counts[candidates].numpy()


def with_replacement(labels: torch.Tensor, anchor: int, draws: int, k: int, seed: int) -> torch.Tensor:
    """The old sampler's law, i.i.d. uniform over the candidates: to show that the test tells them apart."""
    candidates = torch.nonzero(labels != labels[anchor]).flatten()
    pick = torch.randint(len(candidates), (draws, k), generator=torch.Generator().manual_seed(seed))
    return candidates[pick]


def test_negatives_are_a_uniform_subset_of_the_other_class_samples(strategy):
    draws = 400
    method = make_crd(seed=3)
    anchors = [int(torch.nonzero(UNEQUAL == c)[0]) for c in range(5)]
    negatives = method.sample_negatives(torch.tensor(anchors).repeat_interleave(draws)).view(5, draws, K)
    for row, anchor in enumerate(anchors):
        counts = candidate_counts(UNEQUAL, anchor, negatives[row])
        assert (counts > 0).all() and counts.sum() == draws * K
        assert uniformity_p_value(counts, draws, K) > 1e-3, f"anchor of class {row}"
        # the same criterion rejects i.i.d. draws with replacement of the same size
        iid = candidate_counts(UNEQUAL, anchor, with_replacement(UNEQUAL, anchor, draws, K, seed=row))
        assert uniformity_p_value(iid, draws, K) < 1e-3, f"anchor of class {row}"


def test_rows_are_independent_draws(strategy):
    """Two rows of one anchor share K²/M_c negatives on average (hypergeometric), not more, not fewer."""
    pairs = 600
    method = make_crd(seed=4)
    anchor = int(torch.nonzero(UNEQUAL == 4)[0])  # M_c = 50
    negatives = method.sample_negatives(torch.full((2 * pairs,), anchor)).view(pairs, 2, K)
    first = torch.zeros(pairs, 80, dtype=torch.bool).scatter_(1, negatives[:, 0], True)
    second = torch.zeros(pairs, 80, dtype=torch.bool).scatter_(1, negatives[:, 1], True)
    overlap = (first & second).sum(dim=1).double()
    m = 50
    mean, var = K * K / m, K * (K / m) * (1 - K / m) * (m - K) / (m - 1)
    assert abs(float(overlap.mean()) - mean) < 5 * (var / pairs) ** 0.5
    assert abs(float(overlap.var()) - var) < 0.25 * var
    assert overlap.min() >= 2 * K - m  # a pigeonhole bound that only distinct rows of K obey


def test_same_seed_same_draws_and_another_seed_other_draws(strategy):
    batch = torch.arange(0, 80, 3)
    a, b, c = make_crd(seed=5), make_crd(seed=5), make_crd(seed=6)
    draws_a = [a.sample_negatives(batch) for _ in range(3)]
    assert all(torch.equal(x, b.sample_negatives(batch)) for x in draws_a)
    assert not torch.equal(draws_a[0], c.sample_negatives(batch))
    assert not torch.equal(draws_a[0], draws_a[1])  # the stream advances


def test_resume_from_state_dict_continues_the_stream(strategy):
    batch = torch.arange(0, 80, 2)
    first = make_crd(seed=7)
    first.sample_negatives(batch)
    state = first.state_dict()
    expected = [first.sample_negatives(batch) for _ in range(2)]
    second = make_crd(seed=8)
    assert not torch.equal(second.sample_negatives(batch), expected[0])  # its own stream before loading
    second.load_state_dict(state)
    assert all(torch.equal(second.sample_negatives(batch), x) for x in expected)


def test_strategy_rule(monkeypatch):
    monkeypatch.setattr(crd_module, "DENSE_MAX_KEYS", 2**25)
    monkeypatch.setattr(crd_module, "SPARSE_MAX_FRACTION", 0.125)
    # CIFAR-100: 64 × 49,500 keys fit in one block
    assert negative_strategy(64, 49_500, 49_500, 16_384) == ("dense", 64)
    # ImageNet-sized: 256 × 1.28M keys do not; K is 1.3 % of the candidates, so sparse
    assert negative_strategy(256, 1_280_000, 1_279_000, 16_384) == ("sparse", 0)
    # too many keys and K too large a fraction for sparse: dense in blocks of rows within the limit
    assert negative_strategy(256, 400_000, 100_000, 16_384) == ("dense", 2**25 // 400_000)
    assert negative_strategy(4, 2**26, 2**26, 2**25) == ("dense", 1)


def test_crd_is_registered_as_version_2():
    seen: dict[str, dict] = {}
    crd_module.kdbench_register_methods(lambda name, factory, **kw: seen.__setitem__(name, kw))
    assert seen == {"crd": {"version": "2"}}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dense_strategy_does_not_synchronise_with_the_host():
    method = make_crd().to("cuda")
    indices = torch.arange(0, 80, 5, device="cuda")
    method.sample_negatives(indices)  # moves the generator to the device
    torch.cuda.set_sync_debug_mode("error")
    try:
        negatives = method.sample_negatives(indices)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert_distinct_other_class(UNEQUAL, indices.cpu(), negatives.cpu(), K)
