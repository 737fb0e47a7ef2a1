"""DIST and NKD against values worked out here with numpy and explicit loops (float64): their terms per sample
(and DIST's batch term), student gradients (by central differences for DIST, in closed form for NKD), the
official defaults, Label Revision on the rows the teacher gets wrong only, and Data Selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdbench.contracts import StepInputs
from kdbench.train.supervision import Supervision
from kdbench_plugins.methods.dist import DIST
from kdbench_plugins.methods.nkd import NKD
from kdbench_plugins.revisions.paper import PaperRevision

ZS = np.array(
    [[1.0, 2.0, 0.5, -1.0, 0.0], [0.0, -1.0, 3.0, 0.25, 1.0], [2.0, 2.5, -0.5, 1.0, -2.0], [0.3, -0.7, 1.1, 2.2, 0.4]]
)
ZT = np.array(
    [[4.0, 1.0, 0.0, -2.0, 1.5], [0.5, 0.5, 6.0, 1.0, -1.0], [-1.0, 3.0, 0.0, 2.0, 0.5], [1.0, 0.0, 2.5, -1.0, 4.0]]
)
Y = np.array([0, 1, 1, 3])
RIGHT = np.array([True, False, True, False])  # argmax ZT == Y, row by row


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def pearson_loop(a: list[float], b: list[float]) -> float:
    """Pearson correlation as a cosine of the centred vectors, with the official 1e-8 in the denominator."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum((x - ma) ** 2 for x in a))
    nb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (na * nb + 1e-8)


def revised(p: np.ndarray, y: np.ndarray, zt: np.ndarray, eta: float = 0.8) -> np.ndarray:
    """The paper's Eq. 7–9 on the rows the teacher gets wrong (argmax zt ≠ y); the others as given."""
    q = p.copy()
    for i in range(len(y)):
        if zt[i].argmax() != y[i]:
            b = eta / (p[i].max() - p[i, y[i]] + 1)
            q[i] = b * p[i]
            q[i, y[i]] += 1 - b
    return q


def step_of(zs, zt, y, revise=None, dtype=torch.float64) -> StepInputs:
    return StepInputs(
        student_logits=torch.tensor(zs, dtype=dtype, requires_grad=True),
        teacher_logits=torch.tensor(zt, dtype=dtype),
        targets=torch.tensor(y),
        epoch=3,
        revise_teacher=revise,
    )


def ce_rows(zs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(softmax(zs)[np.arange(len(y)), y])


# ---------------------------------------------------------------------------------------------- DIST


def dist_by_hand(zs, zt, y, beta, gamma, tau, ce_weight=1.0, eta=None):
    """(per-sample CE + inter terms, the intra batch term); the teacher's σ_τ(zt) revised when ``eta`` is set."""
    ys, yt = softmax(zs / tau), softmax(zt / tau)
    if eta is not None:
        yt = revised(yt, y, zt, eta)
    inter = np.array([1 - pearson_loop(list(ys[i]), list(yt[i])) for i in range(len(y))])
    intra = 1 - np.mean([pearson_loop(list(ys[:, c]), list(yt[:, c])) for c in range(zs.shape[1])])
    return ce_weight * ce_rows(zs, y), beta * tau**2 * inter, gamma * tau**2 * intra


def dist_objective(zs, zt, y, beta, gamma, tau, eta=None) -> float:
    """What the engine minimises without DS/LR: the per-sample terms' batch mean plus the batch term."""
    ce, inter, intra = dist_by_hand(zs, zt, y, beta, gamma, tau, eta=eta)
    return float((ce + inter).mean() + intra)


def numeric_grad(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


def test_dist_defaults_are_the_official_cifar_setting():
    method = DIST()
    assert (method.beta, method.gamma, method.tau, method.ce_weight) == (2.0, 2.0, 4.0, 1.0)
    assert DIST.owns_logit_loss and DIST.uses_teacher and not DIST.needs_features


@pytest.mark.parametrize(("beta", "gamma", "tau"), [(2.0, 2.0, 4.0), (1.0, 1.0, 1.0), (0.5, 3.0, 2.0)])
def test_dist_terms_and_gradient_match_the_hand_computation(beta, gamma, tau):
    step = step_of(ZS, ZT, Y)
    terms = DIST(beta=beta, gamma=gamma, tau=tau).loss_terms(step)
    ce, inter, intra = dist_by_hand(ZS, ZT, Y, beta, gamma, tau)
    assert set(terms.sample) == {"ce", "inter"} and set(terms.batch) == {"intra"}
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), ce, rtol=1e-12)
    np.testing.assert_allclose(terms.sample["inter"].detach().numpy(), inter, rtol=1e-10)
    assert terms.batch["intra"].dim() == 0
    assert terms.batch["intra"].item() == pytest.approx(intra, rel=1e-10)
    loss = (
        Supervision().batch_loss(terms, step.student_logits, step.teacher_logits, step.targets, torch.arange(4)).total()
    )
    assert loss.item() == pytest.approx(dist_objective(ZS, ZT, Y, beta, gamma, tau), rel=1e-10)
    (grad,) = torch.autograd.grad(loss, step.student_logits)
    expected = numeric_grad(lambda z: dist_objective(z, ZT, Y, beta, gamma, tau), ZS)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-5, atol=1e-9)


def test_dist_pearson_spelled_out_for_two_classes():
    # With two classes every centred probability row is ±(p − ½)·[1, −1]: ρ = ±1 by the sign agreement of
    # p_s,0 − ½ and p_t,0 − ½ (the 1e-8 aside). Rows 0 and 1 agree, row 2 disagrees: inter = [0, 0, 2].
    zs, zt = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), np.array([[3.0, 1.0], [0.0, 5.0], [0.0, 2.0]])
    terms = DIST(beta=1.0, gamma=1.0, tau=1.0).loss_terms(step_of(zs, zt, [0, 1, 0]))
    np.testing.assert_allclose(terms.sample["inter"].detach().numpy(), [0.0, 0.0, 2.0], atol=1e-7)


def test_dist_is_invariant_to_shift_and_scale_of_the_teachers_probabilities_per_row():
    """The inter-class relation compares shapes: a student whose σ_τ row is an affine image of the teacher's
    has inter-class term 0 (up to the 1e-8 of the denominator), where a KL would not be 0."""
    tau = 4.0
    pt = softmax(ZT / tau)
    ps = 0.5 * pt + 0.5 / ZT.shape[1]  # affine in p, still a distribution
    zs = np.log(ps) * tau
    inter = DIST(tau=tau).loss_terms(step_of(zs, ZT, Y)).sample["inter"].detach().numpy()
    np.testing.assert_allclose(inter, dist_by_hand(zs, ZT, Y, 2.0, 2.0, tau)[1], rtol=1e-6)
    assert np.all(inter < 1e-4)
    assert np.all((pt * np.log(pt / ps)).sum(axis=1) * 2 * tau**2 > 1e-2)


def test_dist_one_sample_and_extreme_logits_stay_finite():
    terms = DIST().loss_terms(step_of(ZS[:1], ZT[:1], Y[:1]))  # a batch of one: no intra-class spread
    assert terms.batch["intra"].item() == pytest.approx(2.0 * 16.0, rel=1e-9)  # ρ = 0 for a constant column
    for dtype in (torch.float32, torch.bfloat16):
        step = step_of([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], [[-1e4, 1e4, 0.0], [1e4, -1e4, 1e4]], [0, 1], dtype=dtype)
        terms = DIST().loss_terms(step)
        total = terms.per_sample_total(step.student_logits).mean() + terms.batch_total(step.student_logits)
        assert torch.isfinite(total)
        total.backward()
        assert torch.isfinite(step.student_logits.grad).all()


def test_dist_with_lr_revises_the_teacher_where_it_is_wrong_only():
    step = step_of(ZS, ZT, Y, revise=PaperRevision(0.8).revise)
    terms = DIST().loss_terms(step)
    ce, inter, intra = dist_by_hand(ZS, ZT, Y, 2.0, 2.0, 4.0, eta=0.8)
    np.testing.assert_allclose(terms.sample["inter"].detach().numpy(), inter, rtol=1e-10)
    assert terms.batch["intra"].item() == pytest.approx(intra, rel=1e-10)
    _, plain_inter, plain_intra = dist_by_hand(ZS, ZT, Y, 2.0, 2.0, 4.0)
    np.testing.assert_allclose(inter[RIGHT], plain_inter[RIGHT], rtol=1e-12)  # right rows: as without LR
    assert np.all(np.abs(inter[~RIGHT] - plain_inter[~RIGHT]) > 1e-3)
    assert abs(intra - plain_intra) > 1e-4
    loss = (
        Supervision(revision=PaperRevision(), revision_in_method=True)
        .batch_loss(terms, step.student_logits, step.teacher_logits, step.targets, torch.arange(4))
        .total()
    )
    (grad,) = torch.autograd.grad(loss, step.student_logits)
    expected = numeric_grad(lambda z: dist_objective(z, ZT, Y, 2.0, 2.0, 4.0, eta=0.8), ZS)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-5, atol=1e-9)


def test_dist_with_ds_gives_ds_samples_ce_and_keeps_the_batch_term():
    step = step_of(ZS, ZT, Y)
    terms = DIST().loss_terms(step)
    mask = torch.tensor([True, False, False, True])
    loss = (
        Supervision(distill_mask=mask)
        .batch_loss(terms, step.student_logits, step.teacher_logits, step.targets, torch.arange(4))
        .total()
    )
    ce, inter, intra = dist_by_hand(ZS, ZT, Y, 2.0, 2.0, 4.0)
    expected = np.where(mask.numpy(), ce + inter, ce_rows(ZS, Y)).mean() + intra
    assert loss.item() == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------------------------- NKD


def nkd_by_hand(zs, zt, y, T, gamma, eta=None):
    """(−t_y·log s_y, −γ·T²·Σ_{c≠y} t̂_c·log ŝ_c) per sample, row by row; the teacher's σ(zt) and σ_T(zt) revised
    where it is wrong when ``eta`` is set (the non-target part then q_{−y} / (1 − q_y))."""
    target, rest = [], []
    for i in range(len(y)):
        c = int(y[i])
        others = [k for k in range(zs.shape[1]) if k != c]
        s = softmax(zs[i])
        t1, tT = softmax(zt[i]), softmax(zt[i] / T)
        if eta is not None and zt[i].argmax() != c:
            t1 = revised(t1[None], y[i : i + 1], zt[i : i + 1], eta)[0]
            tT = revised(tT[None], y[i : i + 1], zt[i : i + 1], eta)[0]
        t_hat = tT[others] / tT[others].sum()
        s_hat = softmax(zs[i, others] / T)
        target.append(-t1[c] * math.log(s[c]))
        rest.append(-gamma * T * T * float((t_hat * np.log(s_hat)).sum()))
    return np.array(target), np.array(rest)


def nkd_grad_by_hand(zs, zt, y, T, gamma, ce_weight=1.0):
    """d/dzs of the per-sample sum ce_weight·CE − t_y·log s_y − γT²·Σ t̂ log ŝ, in closed form:
    (ce_weight + t_y)·(s − e_y) on every class, plus γ·T·(ŝ − t̂) on the non-target ones (Σ t̂ = 1)."""
    g = np.zeros_like(zs)
    for i in range(len(y)):
        c = int(y[i])
        others = [k for k in range(zs.shape[1]) if k != c]
        s, e = softmax(zs[i]), np.eye(zs.shape[1])[c]
        g[i] = (ce_weight + softmax(zt[i])[c]) * (s - e)
        g[i, others] += gamma * T * (softmax(zs[i, others] / T) - softmax(zt[i, others] / T))
    return g


def test_nkd_defaults_are_the_official_cifar_setting():
    method = NKD()
    assert (method.T, method.gamma, method.ce_weight) == (3.0, 3.5, 1.0)
    assert NKD.owns_logit_loss and NKD.uses_teacher and not NKD.needs_features


@pytest.mark.parametrize(("T", "gamma"), [(3.0, 3.5), (1.0, 1.5), (2.0, 0.5)])
def test_nkd_terms_and_gradient_match_the_hand_computation(T, gamma):
    step = step_of(ZS, ZT, Y)
    terms = NKD(T=T, gamma=gamma).loss_terms(step)
    target, rest = nkd_by_hand(ZS, ZT, Y, T, gamma)
    assert set(terms.sample) == {"ce", "nkd_target", "nkd_non_target"} and not terms.batch
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), ce_rows(ZS, Y), rtol=1e-12)
    np.testing.assert_allclose(terms.sample["nkd_target"].detach().numpy(), target, rtol=1e-10)
    np.testing.assert_allclose(terms.sample["nkd_non_target"].detach().numpy(), rest, rtol=1e-10)
    (grad,) = torch.autograd.grad(terms.per_sample_total(step.student_logits).sum(), step.student_logits)
    np.testing.assert_allclose(grad.numpy(), nkd_grad_by_hand(ZS, ZT, Y, T, gamma), rtol=1e-9, atol=1e-12)


def test_nkd_two_classes_spelled_out():
    # Two classes: the non-target "distribution" is one class with probability 1 on both sides, so the
    # non-target term is exactly 0; the target term is −t_y·log s_y.
    zs, zt = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    terms = NKD().loss_terms(step_of(zs, zt, [0]))
    t_y, s_y = 1 / (1 + math.e**2), math.e / (math.e + 1)
    assert terms.sample["nkd_target"].item() == pytest.approx(-t_y * math.log(s_y), rel=1e-12)
    assert terms.sample["nkd_non_target"].item() == pytest.approx(0.0, abs=1e-12)


def test_nkd_with_lr_revises_the_teacher_where_it_is_wrong_only():
    step = step_of(ZS, ZT, Y, revise=PaperRevision(0.8).revise)
    terms = NKD().loss_terms(step)
    target, rest = nkd_by_hand(ZS, ZT, Y, 3.0, 3.5, eta=0.8)
    np.testing.assert_allclose(terms.sample["nkd_target"].detach().numpy(), target, rtol=1e-10)
    np.testing.assert_allclose(terms.sample["nkd_non_target"].detach().numpy(), rest, rtol=1e-10)
    plain_target, plain_rest = nkd_by_hand(ZS, ZT, Y, 3.0, 3.5)
    np.testing.assert_allclose(target[RIGHT], plain_target[RIGHT], rtol=1e-12)  # right rows: as without LR
    assert np.all(target[~RIGHT] - plain_target[~RIGHT] > 1e-3)  # the label gains weight on the wrong rows
    # the paper's revision scales σ_T(zt) off the label, so its non-target shape, and the term, stay the same
    np.testing.assert_allclose(rest, plain_rest, rtol=1e-10)


def test_nkd_with_onehot_revision_has_no_non_target_term_on_wrong_rows():
    def onehot(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(y, p.shape[1]).to(p.dtype)

    terms = NKD().loss_terms(step_of(ZS, ZT, Y, revise=onehot))
    rest = terms.sample["nkd_non_target"].detach().numpy()
    assert np.all(np.isfinite(rest)) and np.all(rest[~RIGHT] == 0.0)
    np.testing.assert_allclose(terms.sample["nkd_target"].detach().numpy()[~RIGHT], ce_rows(ZS, Y)[~RIGHT], rtol=1e-12)


def test_nkd_with_ds_gives_ds_samples_ce():
    step = step_of(ZS, ZT, Y)
    terms = NKD().loss_terms(step)
    mask = torch.tensor([False, True, True, False])
    loss = (
        Supervision(distill_mask=mask)
        .batch_loss(terms, step.student_logits, step.teacher_logits, step.targets, torch.arange(4))
        .total()
    )
    target, rest = nkd_by_hand(ZS, ZT, Y, 3.0, 3.5)
    expected = np.where(mask.numpy(), ce_rows(ZS, Y) + target + rest, ce_rows(ZS, Y)).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nkd_is_finite_for_extreme_logits(dtype):
    step = step_of([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], [[-1e4, 1e4, 0.0], [1e4, -1e4, 1e4]], [0, 1], dtype=dtype)
    terms = NKD().loss_terms(step)
    total = terms.per_sample_total(step.student_logits)
    assert all(v.dtype != torch.bfloat16 for v in terms.sample.values())
    assert torch.isfinite(total).all()
    total.sum().backward()
    assert torch.isfinite(step.student_logits.grad).all()


def test_suite_entries_with_lr_and_ds_revise_inside_the_method(write_suite, registry):
    """dist and nkd own their logit loss: a suite's LR on them revises the teacher inside the method (keyed
    ``in_method: wrong_only``), never Eq. (11); DS applies as to every method."""
    from kdbench.plan import expand, load_suite

    suite = write_suite("""
        name: dn
        dataset: {name: digits, params: {image_size: 8}}
        seeds: [0]
        pairs: [{teacher: resnet20, student: resnet8}]
        methods: [dist, {name: dist, revision: paper}, {name: nkd, revision: paper, selection: random}]
    """)
    runs = {r.label: r for r in expand(load_suite(suite), registry).runs}
    assert runs["dist"].method.params == {"beta": 2.0, "gamma": 2.0, "tau": 4.0, "ce_weight": 1.0}
    assert runs["dist+LR"].revision.in_method and runs["dist+LR"].revision.identity()["in_method"] == "wrong_only"
    assert runs["nkd+LR+DS"].revision.in_method and runs["nkd+LR+DS"].selection is not None
