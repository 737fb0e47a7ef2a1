"""Label Revision (Eq. 7–9) and the paper's loss, Eq. (11), against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdbench.errors import KdbenchError
from kdbench.train.revision_loss import RevisionLossConfig, revision_loss
from kdbench_plugins.revisions.baselines import NoRevision, OneHotRevision, SwapRevision
from kdbench_plugins.revisions.paper import PaperRevision


def test_paper_worked_example():
    pt = torch.tensor([[0.1, 0.1, 0.5, 0.3]], dtype=torch.float64)
    revised = PaperRevision(eta=0.9).revise(pt, torch.tensor([3]))
    assert revised.tolist()[0] == pytest.approx([0.075, 0.075, 0.375, 0.475], abs=1e-12)


def test_per_sample_eta_by_hand():
    pt = torch.tensor([[0.1, 0.1, 0.5, 0.3]], dtype=torch.float64)
    y = torch.tensor([3])
    # ptmax: η = 0.5 → β = 0.5 / 1.2; pttar: η = 0.3 → β = 0.3 / 1.2
    for eta, beta in (("ptmax", 0.5 / 1.2), ("pttar", 0.3 / 1.2)):
        expected = [beta * p for p in (0.1, 0.1, 0.5, 0.3)]
        expected[3] += 1 - beta
        assert PaperRevision(eta=eta).revise(pt, y).tolist()[0] == pytest.approx(expected, abs=1e-12)


def test_right_samples_only_sharpen_towards_the_label():
    pt = torch.tensor([[0.2, 0.7, 0.1]], dtype=torch.float64)
    revised = PaperRevision(eta=0.8).revise(pt, torch.tensor([1]))  # β = η when the teacher is right
    assert revised.tolist()[0] == pytest.approx([0.16, 0.56 + 0.2, 0.08])


probabilities = st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=2, max_size=12)


@settings(max_examples=300, deadline=None)
@given(weights=probabilities, label_seed=st.integers(0, 10_000), eta=st.floats(0.0, 0.999))
def test_revised_argmax_is_the_label_for_any_eta_below_one(weights, label_seed, eta):
    pt = torch.tensor([weights], dtype=torch.float64)
    pt = pt / pt.sum()
    y = torch.tensor([label_seed % pt.shape[1]])
    for strategy in (PaperRevision(eta=eta), PaperRevision(eta="pttar")):
        revised = strategy.revise(pt, y)
        assert revised.sum().item() == pytest.approx(1.0, abs=1e-9)
        others = torch.cat([revised[0, : y.item()], revised[0, y.item() + 1 :]])
        assert revised[0, y.item()] > others.max()


def test_ptmax_keeps_label_as_argmax_unless_teacher_is_certain():
    pt = torch.tensor([[0.05, 0.9, 0.05]], dtype=torch.float64)
    revised = PaperRevision(eta="ptmax").revise(pt, torch.tensor([0]))
    assert revised.argmax().item() == 0


def test_eta_must_be_below_one():
    with pytest.raises(KdbenchError, match="eta must be in"):
        PaperRevision(eta=1.0)
    with pytest.raises(KdbenchError, match="'ptmax' or 'pttar'"):
        PaperRevision(eta="max")


def test_swap_onehot_none():
    pt = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]], dtype=torch.float64)
    y = torch.tensor([1, 1])
    assert SwapRevision().revise(pt, y).tolist() == [[0.3, 0.6, 0.1], [0.2, 0.7, 0.1]]
    assert OneHotRevision().revise(pt, y).tolist() == [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    assert torch.equal(NoRevision().revise(pt, y), pt)


def softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def hand_eq11(zs, zt, y, eta, l1, l2, distill):
    """Eq. (11) computed with plain Python, each term averaged over its own subset and over classes."""
    ce, right_mse, wrong_mse = [], [], []
    for s, t, label, d in zip(zs, zt, y, distill, strict=True):
        right = max(range(len(t)), key=lambda c: t[c]) == label
        if d and not right:
            pt = softmax(t)
            beta = eta / (max(pt) - pt[label] + 1)
            p = [beta * v + (1 - beta) * (c == label) for c, v in enumerate(pt)]
            wrong_mse.append(sum((a - b) ** 2 for a, b in zip(softmax(s), p, strict=True)) / len(s))
            continue
        ce.append(-math.log(softmax(s)[label]))
        if d:
            right_mse.append(sum((a - b) ** 2 for a, b in zip(s, t, strict=True)) / len(s))

    def mean(xs):
        return sum(xs) / len(xs) if xs else 0.0

    return mean(ce) + l1 * mean(right_mse) + l2 * mean(wrong_mse)


ZS = [[1.0, 0.5, -0.5], [0.2, 0.1, 0.9], [2.0, -1.0, 0.0], [0.0, 0.3, 0.1]]
ZT = [[3.0, 0.0, -1.0], [0.0, 2.0, 0.5], [0.5, 1.5, 0.0], [0.2, 0.1, 2.5]]
Y = [0, 2, 0, 2]  # teacher right on samples 0 and 3, wrong on 1 and 2


@pytest.mark.parametrize(
    "distill",
    [
        [True, True, True, True],  # plain Eq. (11)
        [True, False, True, False],  # with Data Selection
        [False, True, True, False],  # R empty within D_t
        [True, False, False, True],  # W empty within D_t
        [False, False, False, False],  # everything in D_s: plain CE
    ],
)
def test_eq11_by_hand(distill):
    cfg = RevisionLossConfig(lambda1=4.0, lambda2=0.5)
    loss, parts = revision_loss(
        torch.tensor(ZS, dtype=torch.float64), torch.tensor(ZT, dtype=torch.float64), torch.tensor(Y),
        PaperRevision(eta=0.8), cfg, torch.tensor(distill),
    )
    assert loss.item() == pytest.approx(hand_eq11(ZS, ZT, Y, 0.8, 4.0, 0.5, distill), rel=1e-12)
    assert all(torch.isfinite(v) for v in parts.values())


def test_eq11_sum_reduction_and_temperature():
    zs, zt, y = torch.tensor(ZS, dtype=torch.float64), torch.tensor(ZT, dtype=torch.float64), torch.tensor(Y)
    mean_cfg, sum_cfg = RevisionLossConfig(), RevisionLossConfig(reduction="sum")
    _, mean_parts = revision_loss(zs, zt, y, NoRevision(), mean_cfg)
    _, sum_parts = revision_loss(zs, zt, y, NoRevision(), sum_cfg)
    assert sum_parts["lr_right"].item() == pytest.approx(3 * mean_parts["lr_right"].item())
    hot, _ = revision_loss(zs, zt, y, NoRevision(), RevisionLossConfig(temperature=4.0))
    cold, _ = revision_loss(zs, zt, y, NoRevision(), RevisionLossConfig(temperature=1.0))
    assert hot.item() != pytest.approx(cold.item())


def test_eq11_gradients_flow_to_the_student_only():
    zs = torch.tensor(ZS, dtype=torch.float64, requires_grad=True)
    zt = torch.tensor(ZT, dtype=torch.float64, requires_grad=True)
    loss, _ = revision_loss(zs, zt.detach(), torch.tensor(Y), PaperRevision(), RevisionLossConfig())
    loss.backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and zt.grad is None
