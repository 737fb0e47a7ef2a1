"""Built-in method formulas against values worked out independently (plain Python math)."""

from __future__ import annotations

import math

import pytest
import torch

from kdbench.contracts import StepInputs
from kdbench_plugins.methods.ce import CrossEntropy
from kdbench_plugins.methods.kd import HintonKD
from kdbench_plugins.methods.mse_kd import MSELogitKD


def softmax(z, T=1.0):
    e = [math.exp(v / T) for v in z]
    s = sum(e)
    return [v / s for v in e]


def step(zs, zt, y):
    return StepInputs(
        student_logits=torch.tensor(zs, dtype=torch.float64),
        teacher_logits=torch.tensor(zt, dtype=torch.float64),
        targets=torch.tensor(y),
        indices=torch.arange(len(y)),
        epoch=1,
    )


def test_kd_loss_matches_hand_computation():
    zs = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    zt = [[2.0, 1.0, 0.0], [0.5, 0.5, 4.0]]
    y = [0, 2]
    T, gamma, alpha = 4.0, 0.1, 0.9
    expected_kl, expected_ce = [], []
    for s, t, label in zip(zs, zt, y, strict=True):
        ps, pt = softmax(s, T), softmax(t, T)
        expected_kl.append(sum(a * (math.log(a) - math.log(b)) for a, b in zip(pt, ps, strict=True)))
        expected_ce.append(-math.log(softmax(s)[label]))
    # batchmean KL × T², plus weighted CE, averaged over the batch
    expected = sum(gamma * c + alpha * T * T * k for c, k in zip(expected_ce, expected_kl, strict=True)) / 2
    terms = HintonKD(T=T, gamma=gamma, alpha=alpha).loss_terms(step(zs, zt, y))
    total = sum(v for v in terms.sample.values()).mean().item()
    assert total == pytest.approx(expected, rel=1e-6)
    assert terms.sample["kd"].mean().item() == pytest.approx(alpha * T * T * sum(expected_kl) / 2, rel=1e-6)


def test_kd_is_zero_when_student_equals_teacher():
    z = [[0.3, -1.2, 2.0, 0.1]]
    terms = HintonKD().loss_terms(step(z, z, [2]))
    assert terms.sample["kd"].item() == pytest.approx(0.0, abs=1e-7)


def test_mse_kd_is_mean_squared_logit_difference():
    zs = [[1.0, 2.0], [3.0, -1.0]]
    zt = [[0.0, 2.0], [1.0, 1.0]]
    # per element squared differences: 1, 0, 4, 4 → mean over B·C = 9/4
    terms = MSELogitKD(gamma=0.0, alpha=1.0).loss_terms(step(zs, zt, [0, 1]))
    assert terms.sample["mse"].mean().item() == pytest.approx(9 / 4)


def test_ce_has_no_teacher_and_matches_log_softmax():
    assert CrossEntropy.uses_teacher is False
    zs = [[2.0, 0.0, -1.0]]
    terms = CrossEntropy().loss_terms(step(zs, zs, [1]))
    assert terms.sample["ce"].item() == pytest.approx(-math.log(softmax(zs[0])[1]))
