"""Label Revision on methods that own their logit loss (docs/methods.md §7): CTKD, DKD and DTD-LA keep
their loss and consume the revised teacher distribution. Checked against sums written out by hand in
float64, with the paper's revision computed from its formula here (not by the plugin)."""

from __future__ import annotations

import json

import pytest
import torch

from kdbench.cli import main
from kdbench.contracts import MethodContext, PairInfo, StepInputs
from kdbench_plugins.methods.ctkd import CTKD
from kdbench_plugins.methods.dkd import DKD
from kdbench_plugins.methods.dtd_la import DTDLA
from kdbench_plugins.revisions.paper import PaperRevision

ETA = 0.8


def paper_revision_by_hand(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 7–9: β = η / (p_max − p_y + 1), q = β·p + (1 − β)·e_y."""
    out = torch.empty_like(p)
    for i in range(p.shape[0]):
        beta = ETA / (float(p[i].max()) - float(p[i, y[i]]) + 1)
        out[i] = beta * p[i]
        out[i, y[i]] += 1 - beta
    return out


def kl_by_hand(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return torch.tensor([sum(float(a) * (torch.log(a) - torch.log(b)) for a, b in zip(qi, pi, strict=True) if a > 0)
                         for qi, pi in zip(q, p, strict=True)], dtype=torch.float64)


@pytest.fixture
def step():
    gen = torch.Generator().manual_seed(3)
    zs = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    zt = torch.randn(5, 6, generator=gen, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2, 3, 4])
    return StepInputs(student_logits=zs, targets=y, epoch=30, teacher_logits=zt,
                      revise_teacher=PaperRevision(ETA).revise)


def ctx(classes: int = 6) -> MethodContext:
    return MethodContext(pair=PairInfo("resnet8", "resnet14"), num_classes=classes, num_train=10, batch_size=5,
                         epochs=240)


def test_ctkd_revises_its_kl_target_at_its_current_temperature(step):
    method = CTKD()
    method.setup(ctx())
    method.on_epoch_start(30, 240)
    tau = float(method.current_temperature().detach())
    q = paper_revision_by_hand(torch.softmax(step.teacher_logits / tau, 1), step.targets)
    expected = 0.9 * tau**2 * kl_by_hand(q, torch.softmax(step.student_logits / tau, 1))
    torch.testing.assert_close(method.loss_terms(step).sample["kd"].detach(), expected)


def test_dtd_la_uses_the_revision_instead_of_the_swap(step):
    method = DTDLA()
    tau = method.temperatures(step)
    q = paper_revision_by_hand(torch.softmax(step.teacher_logits / tau[:, None], 1), step.targets)
    expected = 0.9 * tau**2 * kl_by_hand(q, torch.softmax(step.student_logits / tau[:, None], 1))
    torch.testing.assert_close(method.loss_terms(step).sample["kd"], expected)


def test_dkd_splits_the_revised_distribution_into_target_and_non_target(step):
    method = DKD(alpha=1.0, beta=8.0, T=4.0, warmup=20)
    T, y = 4.0, step.targets
    q = paper_revision_by_hand(torch.softmax(step.teacher_logits / T, 1), y)
    p = torch.softmax(step.student_logits / T, 1)
    tckd, nckd = [], []
    for i in range(5):
        qy, py = q[i, y[i]], p[i, y[i]]
        tckd.append(float(qy * torch.log(qy / py) + (1 - qy) * torch.log((1 - qy) / (1 - py))))
        keep = [c for c in range(6) if c != y[i]]
        qn, pn = q[i, keep] / (1 - qy), p[i, keep] / (1 - py)
        nckd.append(float((qn * torch.log(qn / pn)).sum()))
    terms = method.loss_terms(step).sample
    torch.testing.assert_close(terms["tckd"], 16 * torch.tensor(tckd, dtype=torch.float64))
    torch.testing.assert_close(terms["nckd"], 8 * 16 * torch.tensor(nckd, dtype=torch.float64))


@pytest.mark.parametrize("cls", [CTKD, DKD, DTDLA])
def test_without_revision_nothing_changes(cls, step):
    method = cls()
    method.setup(ctx())
    plain = StepInputs(student_logits=step.student_logits, targets=step.targets, epoch=30,
                       teacher_logits=step.teacher_logits)
    revised = method.loss_terms(step).sample
    unrevised = method.loss_terms(plain).sample
    assert set(revised) == set(unrevised)
    assert not torch.allclose(sum(revised.values()), sum(unrevised.values()))


def test_ctkd_with_lr_through_the_cli(write_suite, tmp_path):
    suite = write_suite("""
        name: own
        dataset: {name: digits, params: {image_size: 8}}
        recipe: {epochs: 1, batch_size: 64, milestones: []}
        teacher_recipe: {epochs: 1}
        pairs: [{teacher: resnet8, student: resnet8}]
        methods: [{name: ctkd, revision: paper}, {name: dkd, revision: paper, selection: random}]
    """)
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "r")]) == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "r" / "raw" / "own").glob("*/record.json")]
    assert sorted(r["label"] for r in records) == ["ctkd+LR", "dkd+LR+DS"]
    for r in records:
        assert r["spec"]["revision"]["name"] == "paper" and "loss_lr_right" not in r["metrics"][0]  # no Eq. 11
        assert {"loss_ce"} <= set(r["metrics"][0])
