"""Data Selection: D_t masks, and the rules of docs/methods.md §7 enforced before anything trains."""

from __future__ import annotations

import pytest
import torch

from kdbench.contracts import DataValueEstimator, DistillationMethod, LossTerms, Scores, hookimpl
from kdbench.errors import KdbenchError
from kdbench.plan import expand, load_suite
from kdbench.registry import load_registry
from kdbench.train.selection import select


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("order", ["highest", "lowest", "random"])
def test_mask_size_and_order(fraction, order):
    scores = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 0.0, 6.0, 4.0])
    mask = select(scores, fraction, order, seed=0, num_samples=10)
    assert mask.dtype == torch.bool and int(mask.sum()) == round(fraction * 10)
    chosen = set(scores[mask].tolist())
    k = round(fraction * 10)
    if order == "highest":
        assert chosen == set(range(10 - k, 10))
    elif order == "lowest":
        assert chosen == set(range(k))


def test_random_masks_are_deterministic_per_seed():
    a = select(None, 0.5, "random", seed=3, num_samples=1000)
    b = select(None, 0.5, "random", seed=3, num_samples=1000)
    c = select(None, 0.5, "random", seed=4, num_samples=1000)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.sum()) == 500


def test_a_random_subset_is_independent_of_label_noise_with_the_same_seed():
    """Stream 1 (records written before stream 2) drew the subset from ``randperm`` seeded with the run's seed:
    the permutation label noise with that seed flips first, so with 20% noise every sample of a 5% "random"
    subset was a flipped one. Stream 2 draws from a generator of its own: about 20% of its picks are flipped."""
    from kdbench.train.label_noise import flip_labels

    n = 2000
    labels = torch.arange(n) % 10
    for seed in (0, 1, 2):
        _, flipped = flip_labels(labels, 10, 0.2, "symmetric", seed)
        old = select(None, 0.05, "random", seed, n, stream=1)
        assert torch.equal(old.nonzero().flatten().sort().values,
                           torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:100].sort().values)
        assert bool(flipped[old].all())  # the planted coincidence stream 2 removes
        share = float(flipped[select(None, 0.05, "random", seed, n)].double().mean())
        assert 0.08 <= share <= 0.35, share  # 100 draws of a 20% event: 0.08-0.35 is beyond 3 sigma either side


def test_records_of_stream_1_keep_their_keys():
    from kdbench.plan.spec import SelectionSpec

    old = {"estimator": None, "fraction": 0.2, "order": "random", "seed": 0}
    spec = SelectionSpec.from_identity(old)
    assert spec.stream == 1 and spec.identity() == old
    new = SelectionSpec.from_identity({**old, "stream": 2})
    assert new.stream == 2 and new.identity() == {**old, "stream": 2}
    with pytest.raises(ValueError, match="stream 3"):
        select(None, 0.5, "random", 0, 10, stream=3)


def test_ties_are_broken_by_index():
    scores = torch.zeros(6)
    assert select(scores, 0.5, "highest", 0, 6).tolist() == [True, True, True, False, False, False]


class OwnLogits(DistillationMethod):
    owns_logit_loss = True

    def loss_terms(self, step):
        return LossTerms(sample={"x": step.student_logits.sum(1) * 0})


class Lowish(DataValueEstimator):
    """An estimator whose low scores go to the teacher, with a seed, needing validation data."""

    higher_to_teacher = False
    needs_validation = True

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def score(self, inputs):
        return Scores(torch.zeros(inputs.train.num_samples, dtype=torch.float64))


class Plugin:
    @hookimpl
    def kdbench_register_methods(self, register):
        register("own_logits", OwnLogits)

    @hookimpl
    def kdbench_register_estimators(self, register):
        register("lowish", Lowish)


@pytest.fixture(scope="module")
def reg():
    return load_registry(plugins=[Plugin()])


HEAD = (
    "dataset: {name: digits, params: {val_fraction: 0.1}}\nseeds: [0, 1]\n"
    "pairs: [{teacher: resnet20, student: resnet8}]\n"
)


def test_selection_and_revision_resolve_into_the_spec(write_suite, reg):
    plan = expand(load_suite(write_suite(HEAD + (
        "methods:\n"
        "  - {name: kd, selection: {estimator: lowish, fraction: 0.5}, revision: {name: paper, lambda1: 4}}\n"
        "  - {name: kd, selection: {fraction: 0.2, order: random}}\n"
    ))), reg)
    first, rnd = plan.runs[0], plan.runs[1]
    assert first.label == "kd+LR+DS"
    assert first.selection.identity() == {"estimator": {"name": "lowish", "params": {"seed": 0}, "version": "1"},
                               "fraction": 0.5, "order": "lowest"}  # the estimator's own direction
    assert first.revision.strategy.params == {"eta": 0.8} and first.revision.lambda1 == 4
    assert rnd.selection.identity() == {"estimator": None, "fraction": 0.2, "order": "random", "seed": 0,
                                        "stream": 2}
    seed1 = [r for r in plan.runs if r.seed == 1]
    assert seed1[0].selection.estimator.params == {"seed": 1}
    assert len({r.key for r in plan.runs}) == 4


@pytest.mark.parametrize(
    ("methods", "pattern"),
    [
        ("  - {name: ce, revision: paper}\n", r"suite.yaml:5: Label Revision .* method 'ce' uses no teacher"),
        ("  - {name: ce, selection: influence}\n", r"suite.yaml:5: Data Selection .* method 'ce' uses no teacher"),
        ("  - {name: kd, revision: {name: paper, params: {eta: 1.2}}}\n", r"suite.yaml:5: .*eta must be in \[0, 1\)"),
        ("  - {name: kd, revision: papr}\n", r"unknown revision 'papr'; did you mean 'paper'"),
        ("  - {name: kd, selection: {estimator: lowish, fraction: 1.5}}\n", r"selection.fraction: Input should be"),
    ],
)
def test_forbidden_combinations_fail_before_training(write_suite, reg, methods, pattern):
    with pytest.raises(KdbenchError, match=pattern):
        expand(load_suite(write_suite(HEAD + "methods:\n" + methods)), reg)


def test_own_logit_methods_accept_label_revision(write_suite, reg):
    plan = expand(load_suite(write_suite(HEAD + "methods:\n  - {name: own_logits, revision: paper}\n")), reg)
    assert plan.runs[0].revision.strategy.name == "paper"


def test_own_logit_methods_accept_data_selection(write_suite, reg):
    plan = expand(load_suite(write_suite(HEAD + "methods:\n  - {name: own_logits, selection: lowish}\n")), reg)
    assert plan.runs[0].selection.order == "lowest"


def test_validation_estimators_need_a_validation_split(write_suite, reg):
    text = HEAD.replace("params: {val_fraction: 0.1}", "params: {}") + "methods:\n  - {name: kd, selection: lowish}\n"
    with pytest.raises(KdbenchError, match="needs a validation split"):
        expand(load_suite(write_suite(text)), reg)


def test_influence_on_validation_loss_needs_a_validation_split(write_suite, registry):
    text = ("dataset: digits\npairs: [{teacher: resnet20, student: resnet8}]\nmethods:\n"
            "  - {name: kd, selection: {estimator: influence, params: {score: val}}}\n")
    with pytest.raises(KdbenchError, match="suite.yaml:4: estimator 'influence' needs a validation split"):
        expand(load_suite(write_suite(text)), registry)
    with pytest.raises(KdbenchError, match="b.yaml:4: "):
        expand(load_suite(write_suite(text.replace("score: val", "solver: magic"), "b.yaml")), registry)
