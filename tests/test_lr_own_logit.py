"""Label Revision on methods that own their logit loss (docs/methods.md §7): CTKD, DKD and DTD-LA keep
their loss and consume the teacher distribution revised where the teacher is wrong, as given where it is
right. Checked against sums written out by hand in float64 (terms and student gradients), with the paper's
revision computed from its formula here (not by the plugin), for η = 0.8, "ptmax" and "pttar"."""

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

ETAS = [0.8, "ptmax", "pttar"]
RIGHT = [True, False, True, False, True]  # whether the teacher's argmax is the label, row by row


def paper_revision_by_hand(p: torch.Tensor, y: torch.Tensor, zt: torch.Tensor, eta: float | str) -> torch.Tensor:
    """Eq. 7–9 on the rows the teacher gets wrong: β = η / (p_max − p_y + 1), q = β·p + (1 − β)·e_y, with
    η = p_max ("ptmax") or p_y ("pttar") per sample; rows where argmax zt = y keep p (Eqs. 10–11)."""
    out = p.clone()
    for i in range(p.shape[0]):
        if int(zt[i].argmax()) == int(y[i]):
            continue
        p_max, p_y = p[i].max(), p[i, y[i]]
        e = {"ptmax": p_max, "pttar": p_y}.get(eta, eta) if isinstance(eta, str) else eta
        beta = e / (p_max - p_y + 1)
        out[i] = beta * p[i]
        out[i, y[i]] = out[i, y[i]] + (1 - beta)
    return out


def kl_by_hand(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_c q_c (log q_c − log p_c) per row, 0·log 0 = 0, written as a loop (differentiable in p)."""
    rows = []
    for qi, pi in zip(q, p, strict=True):
        rows.append(sum(a * (torch.log(a) - torch.log(b)) for a, b in zip(qi, pi, strict=True) if a > 0))
    return torch.stack(rows)


def make_step(eta: float | str) -> StepInputs:
    """Five samples of six classes; the teacher is right on rows 0, 2, 4 and wrong on rows 1 and 3."""
    gen = torch.Generator().manual_seed(3)
    zs = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    zt = torch.randn(5, 6, generator=gen, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2, 3, 4])
    for i, right in enumerate(RIGHT):
        top = int(zt[i].argmax())
        if right:
            zt[i, y[i]] = zt[i].max() + 1.0
        elif top == int(y[i]):
            zt[i, (top + 1) % 6] = zt[i].max() + 1.0
    assert [int(zt[i].argmax()) == int(y[i]) for i in range(5)] == RIGHT
    return StepInputs(student_logits=zs.requires_grad_(True), targets=y, epoch=30, teacher_logits=zt,
                      revise_teacher=PaperRevision(eta).revise)


def ctx(classes: int = 6) -> MethodContext:
    return MethodContext(pair=PairInfo("resnet8", "resnet14"), num_classes=classes, num_train=10, batch_size=5,
                         epochs=240)


def student_grad(value: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(value.sum(), zs)
    return grad


@pytest.mark.parametrize("eta", ETAS)
def test_ctkd_revises_its_kl_target_where_the_teacher_is_wrong(eta):
    step = make_step(eta)
    method = CTKD()
    method.setup(ctx())
    method.on_epoch_start(30, 240)
    tau = float(method.current_temperature().detach())
    zs, zt, y = step.student_logits, step.teacher_logits, step.targets
    q = paper_revision_by_hand(torch.softmax(zt / tau, 1), y, zt, eta)
    p_s = torch.softmax(zs.detach() / tau, 1)
    expected = 0.9 * tau**2 * kl_by_hand(q, p_s)
    got = method.loss_terms(step).sample["kd"]
    torch.testing.assert_close(got.detach(), expected)
    # d/dzs of α·τ²·KL(q ‖ σ(zs/τ)) = α·τ·(σ(zs/τ) − q), τ held fixed for the student
    torch.testing.assert_close(student_grad(got, zs), 0.9 * tau * (p_s - q))


@pytest.mark.parametrize("eta", ETAS)
def test_dtd_la_uses_the_revision_where_the_teacher_is_wrong(eta):
    step = make_step(eta)
    method = DTDLA()
    tau = method.temperatures(step).detach()
    zs, zt, y = step.student_logits, step.teacher_logits, step.targets
    q = paper_revision_by_hand(torch.softmax(zt / tau[:, None], 1), y, zt, eta)
    p_s = torch.softmax(zs.detach() / tau[:, None], 1)
    expected = 0.9 * tau**2 * kl_by_hand(q, p_s)
    got = method.loss_terms(step).sample["kd"]
    torch.testing.assert_close(got.detach(), expected)
    torch.testing.assert_close(student_grad(got, zs), 0.9 * tau[:, None] * (p_s - q))


def dkd_by_hand(zs: torch.Tensor, q: torch.Tensor, y: torch.Tensor, T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """TCKD on [q_y, 1 − q_y] and NCKD on q_{−y} / (1 − q_y), against the student's σ_T(zs), row by row."""
    p = torch.softmax(zs / T, 1)
    tckd, nckd = [], []
    for i in range(zs.shape[0]):
        qy, py = q[i, y[i]], p[i, y[i]]
        tckd.append(qy * torch.log(qy / py) + (1 - qy) * torch.log((1 - qy) / (1 - py)))
        keep = [c for c in range(zs.shape[1]) if c != y[i]]
        qn, pn = q[i, keep] / (1 - qy), p[i, keep] / (1 - py)
        nckd.append((qn * torch.log(qn / pn)).sum())
    return torch.stack(tckd), torch.stack(nckd)


@pytest.mark.parametrize("eta", ETAS)
def test_dkd_splits_the_distribution_revised_where_the_teacher_is_wrong(eta):
    step = make_step(eta)
    method = DKD(alpha=1.0, beta=8.0, T=4.0, warmup=20)
    T, zs, zt, y = 4.0, step.student_logits, step.teacher_logits, step.targets
    q = paper_revision_by_hand(torch.softmax(zt / T, 1), y, zt, eta)
    zs_hand = zs.detach().clone().requires_grad_(True)
    tckd, nckd = dkd_by_hand(zs_hand, q, y, T)
    terms = method.loss_terms(step).sample
    torch.testing.assert_close(terms["tckd"].detach(), 16 * tckd.detach())
    torch.testing.assert_close(terms["nckd"].detach(), 8 * 16 * nckd.detach())
    expected_grad = student_grad(16 * tckd + 8 * 16 * nckd, zs_hand)
    torch.testing.assert_close(student_grad(terms["tckd"] + terms["nckd"], zs), expected_grad)


@pytest.mark.parametrize("cls", [CTKD, DKD, DTDLA])
def test_right_predictions_are_not_revised(cls):
    """On the rows the teacher gets right, a method's terms with LR equal its terms without it."""
    step = make_step(0.8)
    method = cls()
    method.setup(ctx())
    plain = StepInputs(student_logits=step.student_logits, targets=step.targets, epoch=30,
                       teacher_logits=step.teacher_logits)
    right = torch.tensor(RIGHT)
    revised, unrevised = method.loss_terms(step).sample, method.loss_terms(plain).sample
    for name in revised:
        torch.testing.assert_close(revised[name][right], unrevised[name][right])


@pytest.mark.parametrize("cls", [CTKD, DKD, DTDLA])
def test_without_revision_nothing_changes(cls):
    step = make_step(0.8)
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
        assert r["spec"]["revision"]["in_method"] == "wrong_only"  # keyed apart from runs that revised every sample
        assert {"loss_ce"} <= set(r["metrics"][0])
