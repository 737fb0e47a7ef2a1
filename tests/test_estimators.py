"""Built-in estimators: registration, the common contract, TracIn, random and the cheap controls by hand."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import pytest
import torch

import kdbench_plugins.estimators as estimator_folder
from kdbench.contracts import (
    CheckpointOutputs,
    DataValueEstimator,
    Scores,
    ScoringInputs,
    SplitOutputs,
    TeacherNetwork,
)
from kdbench.errors import KdbenchError
from kdbench.registry import load_registry
from kdbench_plugins.estimators.controls import EL2N, Loss, Margin, TeacherCorrect
from kdbench_plugins.estimators.influence import Influence
from kdbench_plugins.estimators.knn_shapley import KnnShapley
from kdbench_plugins.estimators.tracin import TracIn
from kdbench_plugins.estimators.uniform_random import RandomScores

F64 = torch.float64
BUILTIN = {"influence", "random", "tracin", "knn-shapley", "el2n", "margin", "loss", "teacher-correct", "trak"}
BUILTIN |= {"kronfluence"}


@pytest.fixture(scope="module")
def registry():
    return load_registry(plugins=[estimator_folder], entry_points=False)


def split(n: int, c: int, d: int, seed: int) -> SplitOutputs:
    g = torch.Generator().manual_seed(seed)
    return SplitOutputs(
        features=torch.randn(n, d, generator=g, dtype=F64),
        logits=2.0 * torch.randn(n, c, generator=g, dtype=F64),
        labels=torch.randint(0, c, (n,), generator=g),
    )


def inputs(n: int = 40, c: int = 3, d: int = 4, checkpoints: int = 2, with_val: bool = True) -> ScoringInputs:
    train = split(n, c, d, seed=0)
    ckpts = tuple(
        CheckpointOutputs(
            epoch=10 * (t + 1),
            lr=0.1 / (t + 1),
            train=split(n, c, d, seed=100 + t),
            head_weight=torch.zeros(c, d, dtype=F64),
            head_bias=torch.zeros(c, dtype=F64),
        )
        for t in range(checkpoints)
    )
    return ScoringInputs(
        train=train,
        head_weight=torch.zeros(c, d, dtype=F64),
        head_bias=torch.zeros(c, dtype=F64),
        weight_decay=5e-4,
        val=split(15, c, d, seed=1) if with_val else None,
        checkpoints=ckpts,
        seed=7,
    )


def test_every_builtin_is_registered_through_the_hook(registry):
    assert set(registry.names("estimator")) == BUILTIN
    influence = registry.get("estimator", "influence")
    assert influence.parameters()["solver"] == "auto" and influence.parameters()["score"] == "param_norm"
    assert influence.parameters()["damping"] is None
    assert registry.get("estimator", "knn-shapley").parameters() == {"k": 5}


class TinyTeacher(torch.nn.Module):
    """A conv layer, pooling and a head named ``fc`` (as the zoo's ResNets): the smallest network an estimator that
    differentiates through the teacher (``needs_network``) can be given."""

    def __init__(self, classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def with_network(data: ScoringInputs) -> ScoringInputs:
    """``data`` plus a TeacherNetwork whose images and labels have the splits' sizes and labels (8 px, random)."""
    c = data.train.logits.shape[1]
    g = torch.Generator().manual_seed(3)
    assert data.val is not None

    def images(n: int) -> torch.Tensor:
        return torch.randn(n, 3, 8, 8, generator=g)

    network = TeacherNetwork(
        TinyTeacher(c, 0).requires_grad_(True), images(data.train.num_samples), data.train.labels,
        images(data.val.num_samples), data.val.labels,
        tuple((ck.epoch, ck.lr, TinyTeacher(c, ck.epoch).requires_grad_(True)) for ck in data.checkpoints))
    return dataclasses.replace(data, network=network)


NETWORK_PARAMS = {"trak": {"proj_dim": 16}}  # TRAK's kernel must be invertible: fewer dimensions than samples


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_conformance(registry, name):
    """Every registered estimator on the same inputs; one that declares ``needs_network`` gets a tiny network, as
    a run gives it the teacher's (the optional packages are in the test environment, so none is skipped)."""
    component = registry.get("estimator", name)
    needs_network = component.factory.needs_network
    estimator = component.create(NETWORK_PARAMS.get(name, {}))
    assert isinstance(estimator, DataValueEstimator)
    assert isinstance(type(estimator).higher_to_teacher, bool)
    assert type(estimator).suspect_when in ("high", "low")
    data = with_network(inputs()) if needs_network else inputs()
    out = estimator.score(data)
    assert isinstance(out, Scores)
    assert out.values.shape == (data.train.num_samples,) and out.values.dtype == F64
    assert bool(torch.isfinite(out.values).all())
    json.dumps(out.info)  # recorded with every run


def test_directions():
    assert Margin.higher_to_teacher is False
    for cls in (
        Influence,
        RandomScores,
        TracIn,
        KnnShapley,
        EL2N,
        Loss,
        TeacherCorrect,
    ):
        assert cls.higher_to_teacher is True
    assert KnnShapley.needs_validation and TracIn.needs_checkpoints


def test_knn_shapley_without_validation_split_is_a_user_error():
    with pytest.raises(KdbenchError, match="knn-shapley needs a validation split: set the dataset's val_fraction"):
        KnnShapley().score(inputs(with_val=False))
    with pytest.raises(KdbenchError):
        KnnShapley(k=0)


# ------------------------------------------------------------------------------------------------ TracIn


def grad_norm_sq_by_hand(s: SplitOutputs, i: int) -> float:
    z = s.logits[i].tolist()
    m = max(z)
    e = [math.exp(v - m) for v in z]
    p = [v / sum(e) for v in e]
    y = int(s.labels[i])
    delta_sq = sum((p[c] - (c == y)) ** 2 for c in range(len(p)))
    h_sq = sum(v * v for v in s.features[i].tolist()) + 1.0
    return delta_sq * h_sq


def test_tracin_is_lr_weighted_sum_of_head_gradient_norms():
    data = inputs(n=5, checkpoints=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three checkpoints: no degeneracy warning
        out = TracIn().score(data)
    expected = [sum(ck.lr * grad_norm_sq_by_hand(ck.train, i) for ck in data.checkpoints) for i in range(5)]
    torch.testing.assert_close(out.values, torch.tensor(expected, dtype=F64), rtol=1e-12, atol=0)
    assert out.info["num_checkpoints"] == 3 and out.info["epochs"] == [10, 20, 30]


@pytest.mark.parametrize("checkpoints", [0, 1])
def test_tracin_with_at_most_one_checkpoint_warns_it_is_grand(checkpoints):
    data = inputs(n=5, checkpoints=checkpoints)
    with pytest.warns(UserWarning, match="GraNd"):
        out = TracIn().score(data)
    source, lr = (data.checkpoints[0].train, data.checkpoints[0].lr) if checkpoints else (data.train, 1.0)
    expected = [lr * grad_norm_sq_by_hand(source, i) for i in range(5)]
    torch.testing.assert_close(out.values, torch.tensor(expected, dtype=F64), rtol=1e-12, atol=0)
    assert out.info["num_checkpoints"] == checkpoints


# ------------------------------------------------------------------------------------------------ controls


def hand_example() -> ScoringInputs:
    """Two classes and three samples with logits chosen so p is easy: p = softmax([log 3, 0]) = [0.75, 0.25]."""
    ln3 = math.log(3.0)
    train = SplitOutputs(
        features=torch.zeros(3, 2, dtype=F64),
        logits=torch.tensor([[ln3, 0.0], [ln3, 0.0], [0.0, 0.0]], dtype=F64),
        labels=torch.tensor([0, 1, 1]),
    )
    return ScoringInputs(
        train=train, head_weight=torch.zeros(2, 2, dtype=F64), head_bias=torch.zeros(2, dtype=F64), weight_decay=0.0
    )


def test_controls_by_hand():
    data = hand_example()
    # δ: [−0.25, 0.25], [0.75, −0.75], [0.5, −0.5]
    torch.testing.assert_close(
        EL2N().score(data).values, torch.tensor([0.25, 0.75, 0.5], dtype=F64) * math.sqrt(2), rtol=1e-14, atol=0
    )
    torch.testing.assert_close(
        Margin().score(data).values, torch.tensor([0.5, -0.5, 0.0], dtype=F64), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(
        Loss().score(data).values,
        torch.tensor([-math.log(0.75), -math.log(0.25), math.log(2.0)], dtype=F64),
        rtol=1e-14,
        atol=0,
    )
    torch.testing.assert_close(
        TeacherCorrect().score(data).values, torch.tensor([1.0, 0.0, 0.0], dtype=F64), rtol=0, atol=0
    )


def test_random_is_deterministic_per_seed_and_differs_across_seeds():
    data = inputs(n=100)
    a, b = RandomScores(seed=3).score(data), RandomScores(seed=3).score(data)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    assert not torch.equal(a.values, RandomScores(seed=4).score(data).values)
    default = RandomScores().score(data)
    assert default.info["seed"] == data.seed == 7
    torch.testing.assert_close(default.values, RandomScores(seed=7).score(data).values, rtol=0, atol=0)
    assert bool(((a.values >= 0) & (a.values < 1)).all())


def test_inconsistent_shapes_are_user_errors():
    data = inputs()
    bad = ScoringInputs(
        train=SplitOutputs(features=data.train.features, logits=data.train.logits[:-1], labels=data.train.labels),
        head_weight=data.head_weight,
        head_bias=data.head_bias,
        weight_decay=5e-4,
    )
    with pytest.raises(KdbenchError, match="expected features"):
        EL2N().score(bad)
    with pytest.raises(KdbenchError, match="head weight"):
        Influence().score(
            ScoringInputs(
                train=data.train, head_weight=torch.zeros(5, 5, dtype=F64), head_bias=data.head_bias, weight_decay=5e-4
            )
        )
