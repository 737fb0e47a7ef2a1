"""Scoring a training set with every registered data-value estimator (Data Selection's Algorithm 1, step 1).

The inputs mimic resnet32x4's head on a fifth of CIFAR-100 (see ``score_influence.synthetic_head``):
10,000 training and 1,000 validation samples, 100 classes, d = 256 ReLU'd features, three teacher
checkpoints for TracIn. ``influence`` is timed with each solver the default ``auto`` picks from: EK-FAC
for the per-sample scores on that head, preconditioned CG for ``val`` on half of it (5,000 samples,
d = 128), and the exact solver on a head small enough for it (2,000 samples, 10 classes, d = 64). The
CIFAR-100-sized solvers, the exact one included (minutes to hours), are timed by
``python benchmarks/score_influence.py``. A round is at least 50 ms (pytest-benchmark calibrates the
calls per round), so the fast estimators' means are not timer noise.
"""

from __future__ import annotations

import dataclasses

import pytest
from score_influence import synthetic_head

from kdbench.contracts import CheckpointOutputs, ScoringInputs
from kdbench.registry import load_registry

pytestmark = pytest.mark.benchmark(min_time=0.05, max_time=1.0, min_rounds=5)

CASES = [pytest.param(name, {}, id=name) for name in load_registry().names("estimator") if name != "influence"] + [
    pytest.param("influence", {"solver": "ekfac", "score": "param_norm"}, id="influence-ekfac-param_norm"),
    pytest.param("influence", {"solver": "ekfac", "score": "self"}, id="influence-ekfac-self"),
]


def with_checkpoints(inputs: ScoringInputs, epochs: tuple[int, ...] = (80, 160, 240)) -> ScoringInputs:
    """The inputs plus teacher checkpoints (the final head's outputs, at each epoch's learning rate)."""
    return dataclasses.replace(inputs, checkpoints=tuple(
        CheckpointOutputs(epoch=e, lr=0.05 * 0.1 ** i, train=inputs.train, head_weight=inputs.head_weight,
                          head_bias=inputs.head_bias) for i, e in enumerate(epochs)))


@pytest.fixture(scope="module")
def head() -> ScoringInputs:
    return with_checkpoints(synthetic_head(num_train=10_000, num_val=1_000, num_classes=100, dim=256, seed=0))


@pytest.mark.parametrize(("name", "params"), CASES)
def test_estimator_score(benchmark, registry, head, name, params):
    estimator = registry.get("estimator", name).create(params)
    benchmark.group = "estimator scoring: N 10,000, 100 classes, d 256"
    scores = benchmark(estimator.score, head)
    assert scores.values.shape == (head.train.num_samples,)


def test_influence_cg_val(benchmark, registry):
    half = synthetic_head(num_train=5_000, num_val=500, num_classes=100, dim=128, seed=0)
    estimator = registry.get("estimator", "influence").create({"solver": "cg", "score": "val"})
    benchmark.group = "estimator scoring: influence by CG (val), N 5,000, 100 classes, d 128"
    scores = benchmark(estimator.score, half)
    benchmark.extra_info["cg_iterations"] = scores.info["cg_iterations"]


def test_influence_exact(benchmark, registry):
    small = synthetic_head(num_train=2_000, num_val=200, num_classes=10, dim=64, seed=0)
    estimator = registry.get("estimator", "influence").create({"solver": "exact", "score": "param_norm"})
    benchmark.group = "estimator scoring: exact influence, N 2,000, 10 classes, d 64"
    benchmark(estimator.score, small)
