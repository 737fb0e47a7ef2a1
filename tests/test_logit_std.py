"""Logit standardization (LS; Sun et al., CVPR 2024) as the ``logit_std`` option of kd, dkd and ctkd.

The Z-score, KD, DKD and CTKD with LS are checked against computations written out here in numpy / plain Python
(float64): values per sample, and student gradients by central differences through the standardization. With
``logit_std`` off (the default) runs keep their keys (the option is left out of the resolved parameters) and
every loss is the plain one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdbench.contracts import LOGIT_STD_EPS, MethodContext, PairInfo, StepInputs, standardize_logits
from kdbench.plan import expand, load_suite
from kdbench.train.supervision import Supervision
from kdbench_plugins.methods.ctkd import CTKD
from kdbench_plugins.methods.dkd import DKD
from kdbench_plugins.methods.kd import HintonKD
from kdbench_plugins.revisions.paper import PaperRevision

# ---------------------------------------------------------------------------------------------- by hand

ZS = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 0.25], [2.0, 2.5, -0.5, 1.0]])
ZT = np.array([[4.0, 1.0, 0.0, -2.0], [0.5, 0.5, 6.0, 1.0], [-1.0, 3.0, 0.0, 2.0]])
Y = np.array([0, 1, 1])  # the teacher is right on rows 0 and 2, wrong on row 1


def zscore(z: np.ndarray) -> np.ndarray:
    """Row-wise (z − mean) / (std + 1e-7), std with n − 1 (numpy's ddof=1), as the official code."""
    return (z - z.mean(axis=1, keepdims=True)) / (z.std(axis=1, ddof=1, keepdims=True) + 1e-7)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * (np.log(p) - np.log(q))).sum(axis=1)


def ce_rows(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(softmax(z)[np.arange(len(y)), y])


def kd_ls_by_hand(zs, zt, y, T, gamma, alpha):
    """γ·CE(raw zs) + α·T²·KL(σ(ẑt/T) ‖ σ(ẑs/T)), ẑ the Z-scored logits; per sample."""
    return gamma * ce_rows(zs, y) + alpha * T**2 * kl_rows(softmax(zscore(zt) / T), softmax(zscore(zs) / T))


def dkd_ls_by_hand(zs, zt, y, T, alpha, beta, ramp=1.0):
    """1·CE(raw zs) + ramp·(α·T²·TCKD + β·T²·NCKD) on the Z-scored logits, per sample, written out row by row."""
    hs, ht = zscore(zs) / T, zscore(zt) / T
    out = []
    for i in range(len(y)):
        ps, pt = softmax(hs[i : i + 1])[0], softmax(ht[i : i + 1])[0]
        c = y[i]
        tckd = pt[c] * math.log(pt[c] / ps[c]) + (1 - pt[c]) * math.log((1 - pt[c]) / (1 - ps[c]))
        rest = [k for k in range(len(ps)) if k != c]
        qs, qt = ps[rest] / (1 - ps[c]), pt[rest] / (1 - pt[c])
        nckd = float((qt * np.log(qt / qs)).sum())
        out.append(ramp * T * T * (alpha * tckd + beta * nckd))
    return ce_rows(zs, y) + np.array(out)


def numeric_grad(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f at z."""
    g = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


def step_of(zs, zt, y, epoch=40, revise=None) -> StepInputs:
    return StepInputs(
        student_logits=torch.tensor(zs, dtype=torch.float64, requires_grad=True),
        teacher_logits=torch.tensor(zt, dtype=torch.float64),
        targets=torch.tensor(y),
        epoch=epoch,
        revise_teacher=revise,
    )


def total_and_grad(method, step):
    terms = method.loss_terms(step)
    total = terms.per_sample_total(step.student_logits)
    (grad,) = torch.autograd.grad(total.sum(), step.student_logits)
    return terms, total.detach().numpy(), grad.numpy()


# ---------------------------------------------------------------------------------------------- the Z-score


def test_standardized_rows_have_mean_0_and_std_1():
    z = torch.tensor(ZS * 7.0 + 3.0, dtype=torch.float64)
    s = standardize_logits(z)
    torch.testing.assert_close(s.mean(dim=1), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    # std(z)/(std(z) + eps): 1 up to the epsilon's relative share
    torch.testing.assert_close(s.std(dim=1), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    np.testing.assert_allclose(s.numpy(), zscore(ZS * 7.0 + 3.0), rtol=1e-12)


def test_standardization_ignores_shift_and_scale_and_divides_by_the_base_temperature():
    z = torch.tensor(ZT, dtype=torch.float64)
    torch.testing.assert_close(standardize_logits(5.0 * z - 11.0), standardize_logits(z), atol=1e-7, rtol=0)
    torch.testing.assert_close(standardize_logits(z, 2.0), standardize_logits(z) / 2.0)
    assert LOGIT_STD_EPS == 1e-7


def test_standardization_of_a_constant_row_is_finite_and_zero():
    s = standardize_logits(torch.full((2, 5), 3.0))
    assert torch.equal(s, torch.zeros(2, 5))


def test_standardization_computes_in_fp32_under_bf16():
    s = standardize_logits(torch.tensor(ZS, dtype=torch.bfloat16))
    assert s.dtype == torch.float32


# ---------------------------------------------------------------------------------------------- kd, dkd, ctkd with LS


@pytest.mark.parametrize(("T", "gamma", "alpha"), [(2.0, 0.1, 9.0), (4.0, 0.1, 0.9)])
def test_kd_with_logit_std_against_the_formula(T, gamma, alpha):
    method = HintonKD(T=T, gamma=gamma, alpha=alpha, logit_std=True)
    terms, total, grad = total_and_grad(method, step_of(ZS, ZT, Y))
    np.testing.assert_allclose(total, kd_ls_by_hand(ZS, ZT, Y, T, gamma, alpha), rtol=1e-10)
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), gamma * ce_rows(ZS, Y), rtol=1e-12)
    expected = numeric_grad(lambda z: kd_ls_by_hand(z, ZT, Y, T, gamma, alpha).sum(), ZS)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def test_kd_with_logit_std_differs_from_plain_kd_and_ignores_logit_scale():
    plain = HintonKD().loss_terms(step_of(ZS, ZT, Y)).sample["kd"]
    ls = HintonKD(logit_std=True).loss_terms(step_of(ZS, ZT, Y)).sample["kd"]
    assert not torch.allclose(plain, ls)
    # LS's point: a student whose logits are the teacher's, scaled and shifted, matches it exactly
    matched = HintonKD(logit_std=True).loss_terms(step_of(ZT * 0.3 - 2.0, ZT, Y)).sample["kd"]
    torch.testing.assert_close(matched, torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)


@pytest.mark.parametrize("epoch", [5, 40])
def test_dkd_with_logit_std_against_the_formula(epoch):
    T, alpha, beta = 2.0, 9.0, 72.0
    ramp = min(epoch / 20, 1.0)
    method = DKD(alpha=alpha, beta=beta, T=T, logit_std=True)
    terms, total, grad = total_and_grad(method, step_of(ZS, ZT, Y, epoch=epoch))
    np.testing.assert_allclose(total, dkd_ls_by_hand(ZS, ZT, Y, T, alpha, beta, ramp), rtol=1e-10)
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), ce_rows(ZS, Y), rtol=1e-12)  # raw logits
    expected = numeric_grad(lambda z: dkd_ls_by_hand(z, ZT, Y, T, alpha, beta, ramp).sum(), ZS)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


def test_ctkd_with_logit_std_against_the_formula():
    method = CTKD(gamma=0.1, alpha=9.0, logit_std=True)
    method.setup(
        MethodContext(pair=PairInfo("resnet8", "resnet14"), num_classes=4, num_train=10, batch_size=3, epochs=240)
    )
    tau = method.current_temperature().item()  # 1 + 20·sigmoid(1), as the float32 θ gives it
    assert tau == pytest.approx(1 + 20 / (1 + math.exp(-1.0)), rel=1e-6)
    terms, total, grad = total_and_grad(method, step_of(ZS, ZT, Y))
    np.testing.assert_allclose(total, kd_ls_by_hand(ZS, ZT, Y, tau, 0.1, 9.0), rtol=1e-10)
    expected = numeric_grad(lambda z: kd_ls_by_hand(z, ZT, Y, tau, 0.1, 9.0).sum(), ZS)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------- with LR and DS


def revised_by_hand(p: np.ndarray, y: np.ndarray, zt: np.ndarray, eta: float = 0.8) -> np.ndarray:
    """The paper's Eq. 7–9 on the rows the teacher gets wrong, as given on the others."""
    q = p.copy()
    for i in range(len(y)):
        if zt[i].argmax() == y[i]:
            continue
        b = eta / (p[i].max() - p[i, y[i]] + 1)
        q[i] = b * p[i]
        q[i, y[i]] += 1 - b
    return q


def test_ctkd_with_logit_std_and_lr_revises_the_standardized_target_on_wrong_rows_only():
    method = CTKD(alpha=0.9, logit_std=True)
    method.setup(
        MethodContext(pair=PairInfo("resnet8", "resnet14"), num_classes=4, num_train=10, batch_size=3, epochs=240)
    )
    tau = method.current_temperature().item()
    got = method.loss_terms(step_of(ZS, ZT, Y, revise=PaperRevision().revise)).sample["kd"].detach().numpy()
    q = revised_by_hand(softmax(zscore(ZT) / tau), Y, ZT)
    expected = 0.9 * tau**2 * kl_rows(q, softmax(zscore(ZS) / tau))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    plain = kd_ls_by_hand(ZS, ZT, Y, tau, 0.0, 0.9)
    np.testing.assert_allclose(got[[0, 2]], plain[[0, 2]], rtol=1e-12)  # right rows: not revised
    assert abs(got[1] - plain[1]) > 1e-3


def test_dkd_with_logit_std_and_lr_splits_the_revised_standardized_distribution():
    T = 2.0
    got = (
        DKD(alpha=1.0, beta=8.0, T=T, logit_std=True)
        .loss_terms(step_of(ZS, ZT, Y, revise=PaperRevision().revise))
        .sample
    )
    q = revised_by_hand(softmax(zscore(ZT) / T), Y, ZT)
    ps = softmax(zscore(ZS) / T)
    for i in range(3):
        c = Y[i]
        tckd = q[i, c] * math.log(q[i, c] / ps[i, c]) + (1 - q[i, c]) * math.log((1 - q[i, c]) / (1 - ps[i, c]))
        rest = [k for k in range(4) if k != c]
        qn, pn = q[i, rest] / (1 - q[i, c]), ps[i, rest] / (1 - ps[i, c])
        assert got["tckd"][i].item() == pytest.approx(T * T * tckd, rel=1e-10)
        assert got["nckd"][i].item() == pytest.approx(8 * T * T * float((qn * np.log(qn / pn)).sum()), rel=1e-10)


def test_kd_with_logit_std_under_lr_and_ds_follows_eq_11_and_ce():
    """kd does not own its logit loss: with LR, Eq. (11) replaces its terms whether LS is on or not; with DS alone
    D_t samples get the LS loss and D_s samples plain CE."""
    zs, zt, y = torch.tensor(ZS), torch.tensor(ZT), torch.tensor(Y)
    idx = torch.arange(3)
    lr = Supervision(revision=PaperRevision())
    with_ls = lr.batch_loss(HintonKD(T=4.0, alpha=0.9, logit_std=True).loss_terms(step_of(ZS, ZT, Y)), zs, zt, y,
                            idx).total()
    without = lr.batch_loss(HintonKD().loss_terms(step_of(ZS, ZT, Y)), zs, zt, y, idx).total()
    torch.testing.assert_close(with_ls, without)
    mask = torch.tensor([True, False, True])
    ds = (
        Supervision(distill_mask=mask)
        .batch_loss(HintonKD(T=4.0, alpha=0.9, logit_std=True).loss_terms(step_of(ZS, ZT, Y)), zs, zt, y, idx)
        .total()
    )
    per_sample = np.where(mask.numpy(), kd_ls_by_hand(ZS, ZT, Y, 4.0, 0.1, 0.9), ce_rows(ZS, Y))
    assert ds.item() == pytest.approx(per_sample.mean(), rel=1e-10)


# ---------------------------------------------------------------------------------------------- off: unchanged


def test_logit_std_off_computes_the_plain_losses():
    for method in (HintonKD(), DKD(), HintonKD(logit_std=False), DKD(logit_std=False)):
        terms = method.loss_terms(step_of(ZS, ZT, Y))
        if isinstance(method, HintonKD):
            expected = 0.1 * ce_rows(ZS, Y) + 0.9 * 16 * kl_rows(softmax(ZT / 4), softmax(ZS / 4))
        else:  # DKD without LS is DKD on the raw logits: the formula above with the Z-score replaced by identity
            expected = ce_rows(ZS, Y)
            for i in range(3):
                ps, pt = softmax(ZS[i : i + 1] / 4)[0], softmax(ZT[i : i + 1] / 4)[0]
                c = Y[i]
                tckd = pt[c] * math.log(pt[c] / ps[c]) + (1 - pt[c]) * math.log((1 - pt[c]) / (1 - ps[c]))
                rest = [k for k in range(4) if k != c]
                qs, qt = ps[rest] / (1 - ps[c]), pt[rest] / (1 - pt[c])
                expected[i] += 16 * (tckd + 8 * float((qt * np.log(qt / qs)).sum()))
        np.testing.assert_allclose(terms.per_sample_total(terms.sample["ce"]).detach().numpy(), expected, rtol=1e-10)


SUITE = """
name: ls
dataset: {name: digits, params: {image_size: 8}}
seeds: [0]
pairs: [{teacher: resnet20, student: resnet8}]
methods:
"""
DEFAULT = "  - kd\n  - dkd\n  - ctkd\n"
OFF = "".join(f"  - {{name: {n}, params: {{logit_std: false}}}}\n" for n in ("kd", "dkd", "ctkd"))
ON = (
    "  - {name: kd, params: {logit_std: true, T: 2.0, alpha: 9.0}}\n"
    "  - {name: dkd, params: {logit_std: true}}\n  - {name: ctkd, params: {logit_std: true}}\n"
)

# The method identities these runs had before ``logit_std`` existed; a run's key hashes its method identity
# with the rest of its spec, so the same identity means the same key.
BEFORE = {
    "kd": {"name": "kd", "params": {"T": 4.0, "gamma": 0.1, "alpha": 0.9}, "version": "1"},
    "dkd": {
        "name": "dkd",
        "params": {"alpha": 1.0, "beta": 8.0, "T": 4.0, "ce_weight": 1.0, "warmup": 20},
        "version": "1",
    },
    "ctkd": {
        "name": "ctkd",
        "params": {"gamma": 0.1, "alpha": 0.9, "init_theta": 1.0, "tau_min": 1.0, "tau_range": 20.0, "ramp_epochs": 10},
        "version": "1",
    },
}


def test_logit_std_off_leaves_run_keys_unchanged_and_on_keys_runs_apart(write_suite, registry):
    def runs(methods: str, name: str) -> dict:
        plan = expand(load_suite(write_suite(SUITE + methods, name)), registry)
        return {r.method.name: r for r in plan.runs}

    default, off, on = runs(DEFAULT, "default.yaml"), runs(OFF, "off.yaml"), runs(ON, "on.yaml")
    for name, identity in BEFORE.items():
        assert default[name].method.identity() == identity
        assert off[name].key == default[name].key  # the explicit default is the same run
        assert on[name].method.params["logit_std"] is True and on[name].key != default[name].key
    assert on["kd"].method.params == {"T": 2.0, "gamma": 0.1, "alpha": 9.0, "logit_std": True}


def test_logit_std_brings_the_official_temperature_and_weights_unless_given(registry):
    """LS's "+Ours" runs (--base-temp 2 --kd-weight 9): KD at T 2 with α 9; DKD at T 2 with α and its pair's β
    times 9; CTKD with α 9. A value the suite gives is kept; without LS the plain defaults hold."""
    pair = PairInfo("resnet8x4", "resnet32x4")

    def resolved(name: str, **params) -> dict:
        comp = registry.get("method", name)
        return comp.factory.resolve_params(comp.resolve(params), pair)

    assert resolved("kd") == {"T": 4.0, "gamma": 0.1, "alpha": 0.9}
    assert resolved("kd", logit_std=True) == {"T": 2.0, "gamma": 0.1, "alpha": 9.0, "logit_std": True}
    assert resolved("kd", logit_std=True, T=3.0)["T"] == 3.0
    plain_dkd = resolved("dkd")
    assert (plain_dkd["alpha"], plain_dkd["beta"], plain_dkd["T"]) == (1.0, 8.0, 4.0)
    ls_dkd = resolved("dkd", logit_std=True)
    assert (ls_dkd["alpha"], ls_dkd["beta"], ls_dkd["T"]) == (9.0, 72.0, 2.0)
    assert resolved("ctkd")["alpha"] == 0.9 and resolved("ctkd", logit_std=True)["alpha"] == 9.0
    assert HintonKD(logit_std=True).T == 2.0 and HintonKD().alpha == 0.9  # built directly, the same rule
