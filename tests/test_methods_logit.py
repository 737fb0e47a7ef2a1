"""DKD, CTKD and DTD-LA against values worked out independently from docs/methods.md §3 (plain Python math)."""

from __future__ import annotations

import math

import pytest
import torch

from kdbench.contracts import DistillationMethod, MethodContext, PairInfo, StepInputs
from kdbench_plugins.methods import ctkd as ctkd_module
from kdbench_plugins.methods import dkd as dkd_module
from kdbench_plugins.methods import dtd_la as dtd_la_module
from kdbench_plugins.methods.ctkd import CTKD, GradientReversal, cosine_reversal_coefficient
from kdbench_plugins.methods.dkd import DKD, warmup_factor
from kdbench_plugins.methods.dtd_la import DTDLA, swap_wrong_log_probs

# ---------------------------------------------------------------------------------------------- helpers


def softmax(z: list[float], T: float = 1.0) -> list[float]:
    m = max(v / T for v in z)
    e = [math.exp(v / T - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * (math.log(a) - math.log(b)) for a, b in zip(p, q, strict=True) if a > 0)


def ce(z: list[float], y: int) -> float:
    return -math.log(softmax(z)[y])


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def make_step(zs, zt, y, epoch: int = 1, dtype=torch.float64, requires_grad: bool = False) -> StepInputs:
    return StepInputs(
        student_logits=torch.tensor(zs, dtype=dtype, requires_grad=requires_grad),
        teacher_logits=torch.tensor(zt, dtype=dtype),
        targets=torch.tensor(y),
        indices=torch.arange(len(y)),
        epoch=epoch,
    )


def context(student: str = "resnet8x4", teacher: str = "resnet32x4", classes: int = 3, batch: int = 2):
    return MethodContext(
        pair=PairInfo(student, teacher), num_classes=classes, num_train=10, batch_size=batch, epochs=240
    )


def ready(method: DistillationMethod, classes: int = 3, batch: int = 2) -> DistillationMethod:
    method.setup(context(classes=classes, batch=batch))
    return method


ZS = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
ZT = [[2.0, 1.0, 0.0], [0.5, 0.5, 4.0]]
Y = [0, 1]


# ---------------------------------------------------------------------------------------------- DKD


def dkd_by_hand(zs: list[float], zt: list[float], y: int, T: float) -> tuple[float, float]:
    """(TCKD, NCKD) for one sample, without the T² factor, straight from the definitions."""
    ps, pt = softmax(zs, T), softmax(zt, T)
    tckd = kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
    rest_s = softmax([v for c, v in enumerate(zs) if c != y], T)
    rest_t = softmax([v for c, v in enumerate(zt) if c != y], T)
    return tckd, kl(rest_t, rest_s)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_dkd_tckd_and_nckd_match_hand_computation(T):
    alpha, beta = 1.5, 8.0
    method = DKD(alpha=alpha, beta=beta, T=T, warmup=20)
    terms = method.loss_terms(make_step(ZS, ZT, Y, epoch=40))
    for i in range(2):
        tckd, nckd = dkd_by_hand(ZS[i], ZT[i], Y[i], T)
        assert terms.sample["tckd"][i].item() == pytest.approx(alpha * T * T * tckd, rel=1e-9)
        assert terms.sample["nckd"][i].item() == pytest.approx(beta * T * T * nckd, rel=1e-9)
        assert terms.sample["ce"][i].item() == pytest.approx(ce(ZS[i], Y[i]), rel=1e-9)
    assert set(terms.sample) == {"ce", "tckd", "nckd"}
    assert not terms.batch


def test_dkd_3_class_numbers_spelled_out():
    # zs = [1, 2, 0.5], zt = [2, 1, 0], y = 0, T = 1.
    # Non-target classes {1, 2}: p̂_s = σ([2, 0.5]), p̂_t = σ([1, 0]).
    es = [math.e**1, math.e**2, math.e**0.5]
    et = [math.e**2, math.e**1, 1.0]
    ps0, pt0 = es[0] / sum(es), et[0] / sum(et)
    tckd = pt0 * math.log(pt0 / ps0) + (1 - pt0) * math.log((1 - pt0) / (1 - ps0))
    hs1 = math.e**2 / (math.e**2 + math.e**0.5)
    ht1 = math.e / (math.e + 1)
    nckd = ht1 * math.log(ht1 / hs1) + (1 - ht1) * math.log((1 - ht1) / (1 - hs1))
    terms = DKD(alpha=1.0, beta=1.0, T=1.0).loss_terms(make_step([ZS[0]], [ZT[0]], [0], epoch=20))
    assert terms.sample["tckd"].item() == pytest.approx(tckd, rel=1e-9)
    assert terms.sample["nckd"].item() == pytest.approx(nckd, rel=1e-9)


@pytest.mark.parametrize(("epoch", "factor"), [(1, 0.05), (10, 0.5), (20, 1.0), (40, 1.0)])
def test_dkd_warmup_factor(epoch, factor):
    assert warmup_factor(epoch, 20) == pytest.approx(factor)
    method = DKD(alpha=1.0, beta=8.0, T=4.0, warmup=20)
    warm = method.loss_terms(make_step(ZS, ZT, Y, epoch=epoch))
    full = method.loss_terms(make_step(ZS, ZT, Y, epoch=1000))
    for name in ("tckd", "nckd"):
        torch.testing.assert_close(warm.sample[name], factor * full.sample[name])
    torch.testing.assert_close(warm.sample["ce"], full.sample["ce"])  # CE is never warmed up


def test_dkd_no_warmup_when_warmup_is_zero():
    assert warmup_factor(1, 0) == 1.0


@pytest.mark.parametrize(
    ("teacher", "student", "beta"),
    [
        ("resnet56", "resnet20", 2),
        ("resnet110", "resnet32", 2),
        ("vgg13", "vgg8", 6),
        ("wrn_40_2", "wrn_16_2", 6),
        ("wrn_40_2", "wrn_40_1", 6),
        ("vgg13", "MobileNetV2", 6),
        ("resnet32x4", "resnet8x4", 8),
        ("resnet32x4", "ShuffleV1", 8),
        ("resnet20", "resnet56", 8),  # the table is keyed by direction
    ],
)
def test_dkd_resolves_beta_per_pair(teacher, student, beta):
    params = {"alpha": 1.0, "beta": None, "T": 4.0, "ce_weight": 1.0, "warmup": 20}
    resolved = DKD.resolve_params(params, PairInfo(student, teacher))
    assert resolved["beta"] == beta
    assert {k: v for k, v in resolved.items() if k != "beta"} == {k: v for k, v in params.items() if k != "beta"}
    assert params["beta"] is None  # the input mapping is not modified
    assert DKD.resolve_params({}, PairInfo(student, teacher))["beta"] == beta


def test_dkd_keeps_an_explicit_beta():
    assert DKD.resolve_params({"beta": 3.5}, PairInfo("resnet20", "resnet56"))["beta"] == 3.5
    assert DKD.resolve_params({"beta": 0.0}, PairInfo("resnet20", "resnet56"))["beta"] == 0.0
    assert DKD().beta == 8.0  # constructed directly, outside a suite


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dkd_is_finite_for_extreme_logits(dtype):
    zs = [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]]
    zt = [[-1e4, 1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, -1e4, 1e4]]
    step = make_step(zs, zt, [0, 1, 2], epoch=30, dtype=dtype, requires_grad=True)
    terms = DKD().loss_terms(step)
    for value in terms.sample.values():
        assert value.dtype != torch.bfloat16  # computed in at least fp32
        assert torch.isfinite(value).all()
    terms.per_sample_total(step.student_logits).mean().backward()
    assert torch.isfinite(step.student_logits.grad).all()
    # Sample 0: the teacher puts ~all of its mass off the label, the student ~all on it, so TCKD ≈ T²·(1 − 0)·
    # (log 1 − log(1 − p_s,y)) with log(1 − p_s,y) = lse(z_{≠y}/T) − lse(z/T) ≈ (0 − z_y/4): TCKD ≈ 16·z_y/4
    # (z_y = 1e4, or 9984 once rounded to bf16).
    z_y = step.student_logits[0, 0].item()
    assert terms.sample["tckd"][0].item() == pytest.approx(16 * z_y / 4, rel=1e-3)
    # Sample 1: teacher and student agree exactly.
    assert terms.sample["tckd"][1].item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------- CTKD


def test_ctkd_initial_temperature():
    method = ready(CTKD())
    assert method.current_temperature().item() == pytest.approx(1 + 20 * sigmoid(1.0), rel=1e-6)
    assert 1 + 20 * sigmoid(1.0) == pytest.approx(15.621172, rel=1e-6)


@pytest.mark.parametrize(
    ("epoch", "lam"),
    [(1, (math.cos(math.pi / 10) - 1) / 2), (5, -0.5), (10, -1.0), (20, -1.0)],
)
def test_ctkd_reversal_schedule(epoch, lam):
    assert cosine_reversal_coefficient(epoch, 10) == pytest.approx(lam, abs=1e-12)
    method = ready(CTKD())
    method.on_epoch_start(epoch, 240)
    assert method.reversal == pytest.approx(lam, abs=1e-12)


def test_ctkd_epoch_1_lambda_value():
    assert cosine_reversal_coefficient(1, 10) == pytest.approx(-0.024471741852423, abs=1e-12)


def test_ctkd_theta_is_a_trainable_parameter_after_setup():
    method = CTKD(init_theta=0.3)
    assert list(method.parameters()) == []
    method.setup(context())
    params = list(method.parameters())
    assert len(params) == 1 and params[0].requires_grad and params[0].item() == pytest.approx(0.3)
    assert "temperature.theta" in method.state_dict()


def ctkd_loss_by_hand(theta: float, zs, zt, y, gamma: float, alpha: float) -> float:
    tau = 1 + 20 * sigmoid(theta)
    total = 0.0
    for s, t, label in zip(zs, zt, y, strict=True):
        total += gamma * ce(s, label) + alpha * tau * tau * kl(softmax(t, tau), softmax(s, tau))
    return total / len(y)


def test_ctkd_loss_matches_hand_computation():
    method = ready(CTKD())
    terms = method.loss_terms(make_step(ZS, ZT, Y))
    expected = ctkd_loss_by_hand(1.0, ZS, ZT, Y, 0.1, 0.9)
    assert terms.per_sample_total(terms.sample["kd"]).mean().item() == pytest.approx(expected, rel=1e-6)
    assert set(terms.sample) == {"ce", "kd"}


# Logits far enough apart that d loss/dθ is clearly non-zero at τ ≈ 15.6 (≈ 0.32 here, 3e-4 with ZS/ZT).
ZS_FAR = [[5.0, -3.0, 0.0], [0.0, -4.0, 6.0]]
ZT_FAR = [[-2.0, 6.0, 1.0], [3.0, 3.0, -5.0]]


@pytest.mark.parametrize("epoch", [1, 5, 10])
def test_ctkd_gradient_on_theta_is_reversed_and_scaled(epoch):
    method = ready(CTKD())
    method.on_epoch_start(epoch, 240)
    lam = method.reversal
    step = make_step(ZS_FAR, ZT_FAR, Y, epoch=epoch, requires_grad=True)
    terms = method.loss_terms(step)
    terms.per_sample_total(step.student_logits).mean().backward()
    grad_theta = method.temperature.theta.grad.item()

    # Same expression without the reversal layer, written out independently with autograd ...
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    tau = 1 + 20 * torch.sigmoid(theta)
    zs, zt = torch.tensor(ZS_FAR, dtype=torch.float64), torch.tensor(ZT_FAR, dtype=torch.float64)
    pt = torch.softmax(zt / tau, dim=1)
    kd = (pt * (torch.log(pt) - torch.log_softmax(zs / tau, dim=1))).sum(dim=1) * tau**2 * 0.9
    plain = (kd + 0.1 * torch.nn.functional.cross_entropy(zs, torch.tensor(Y), reduction="none")).mean()
    (d_loss,) = torch.autograd.grad(plain, theta)
    # ... and by central differences in plain Python.
    h = 1e-5
    fd = (
        ctkd_loss_by_hand(1 + h, ZS_FAR, ZT_FAR, Y, 0.1, 0.9) - ctkd_loss_by_hand(1 - h, ZS_FAR, ZT_FAR, Y, 0.1, 0.9)
    ) / (2 * h)
    assert d_loss.item() == pytest.approx(fd, rel=1e-4)
    assert abs(fd) > 0.1
    assert math.copysign(1.0, grad_theta) == -math.copysign(1.0, fd)
    assert abs(grad_theta) == pytest.approx(abs(lam) * abs(d_loss.item()), rel=1e-5)


def test_ctkd_student_gradient_is_not_reversed():
    method = ready(CTKD())
    method.on_epoch_start(10, 240)  # full reversal on θ
    step = make_step(ZS, ZT, Y, requires_grad=True)
    terms = method.loss_terms(step)
    terms.per_sample_total(step.student_logits).sum().backward()
    zs = torch.tensor(ZS, dtype=torch.float64, requires_grad=True)
    tau = 1 + 20 * sigmoid(1.0)
    pt = torch.softmax(torch.tensor(ZT, dtype=torch.float64) / tau, dim=1)
    ref = (
        0.1 * torch.nn.functional.cross_entropy(zs, torch.tensor(Y), reduction="sum")
        + 0.9 * tau**2 * (pt * (pt.log() - torch.log_softmax(zs / tau, dim=1))).sum()
    )
    ref.backward()
    torch.testing.assert_close(step.student_logits.grad, zs.grad, rtol=1e-5, atol=1e-7)


def test_gradient_reversal_layer_is_identity_forward():
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = GradientReversal.apply(x, -0.25)
    torch.testing.assert_close(y, x.detach())
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.25, -0.25]))


def test_ctkd_before_setup_is_a_clear_error():
    with pytest.raises(RuntimeError, match="setup"):
        CTKD().loss_terms(make_step(ZS, ZT, Y))


# ---------------------------------------------------------------------------------------------- DTD-LA


def dtd_temperatures_by_hand(zs, zt, tau0, beta_d, gamma_w, floor) -> list[float]:
    w = [(1 - cosine(s, t)) ** gamma_w for s, t in zip(zs, zt, strict=True)]
    mean = sum(w) / len(w)
    return [max(tau0 + beta_d * (mean - wi), floor) for wi in w]


def test_dtd_temperatures_by_hand():
    zs = [[1.0, 0.0], [0.0, 1.0]]
    zt = [[1.0, 0.0], [1.0, 0.0]]
    # cos = 1 and 0 → w = 0 and 1, mean 0.5 → τ = 4 + 2·0.5 = 5 and 4 − 2·0.5 = 3.
    tau = DTDLA().temperatures(make_step(zs, zt, [0, 0]))
    torch.testing.assert_close(tau, torch.tensor([5.0, 3.0], dtype=torch.float64))
    # β_d = 10 pushes the hard sample to 4 − 5 = −1: clamped to the floor 1.
    tau = DTDLA(beta_d=10.0).temperatures(make_step(zs, zt, [0, 0]))
    torch.testing.assert_close(tau, torch.tensor([9.0, 1.0], dtype=torch.float64))


def test_dtd_temperatures_general_example():
    # cos([1,2,0.5],[2,1,0]) = 4/(√5.25·√5); cos([0,−1,3],[0.5,0.5,4]) = 11.5/(√10·√16.5)
    c1 = 4 / (math.sqrt(5.25) * math.sqrt(5))
    c2 = 11.5 / (math.sqrt(10) * math.sqrt(16.5))
    w1, w2 = (1 - c1) ** 2, (1 - c2) ** 2
    mean = (w1 + w2) / 2
    expected = [3 + 1.5 * (mean - w1), 3 + 1.5 * (mean - w2)]
    assert expected == pytest.approx(dtd_temperatures_by_hand(ZS, ZT, 3, 1.5, 2, 1))
    tau = DTDLA(tau0=3.0, beta_d=1.5, gamma_w=2.0).temperatures(make_step(ZS, ZT, Y))
    assert tau.tolist() == pytest.approx(expected, rel=1e-12)


def test_dtd_temperature_carries_no_gradient():
    step = make_step(ZS, ZT, Y, requires_grad=True)
    assert not DTDLA().temperatures(step).requires_grad


def test_la_swaps_on_teacher_wrong_samples_only():
    q_wrong = softmax([3.0, 1.0, 0.0], 2.0)  # teacher says 0, label is 1
    q_right = softmax([0.0, 2.0, 1.0], 2.0)  # teacher says 1, label is 1
    log_q = torch.log(torch.tensor([q_wrong, q_right], dtype=torch.float64))
    zt = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]], dtype=torch.float64)
    out = swap_wrong_log_probs(log_q, zt, torch.tensor([1, 1])).exp()
    assert out[0].tolist() == pytest.approx([q_wrong[1], q_wrong[0], q_wrong[2]], rel=1e-12)
    assert out[1].tolist() == pytest.approx(q_right, rel=1e-12)
    assert out[0].argmax().item() == 1
    assert out.sum(dim=1).tolist() == pytest.approx([1.0, 1.0])


def dtd_la_by_hand(zs, zt, y, tau0=4.0, beta_d=2.0, gamma_w=1.0, floor=1.0, gamma=0.1, alpha=0.9):
    taus = dtd_temperatures_by_hand(zs, zt, tau0, beta_d, gamma_w, floor)
    out = []
    for s, t, label, tau in zip(zs, zt, y, taus, strict=True):
        q = softmax(t, tau)
        top = max(range(len(t)), key=lambda c: t[c])
        if top != label:
            q[top], q[label] = q[label], q[top]
        out.append((gamma * ce(s, label), alpha * tau * tau * kl(q, softmax(s, tau)), tau, q))
    return out


def test_dtd_la_loss_matches_hand_computation():
    # Sample 0: teacher right (argmax 0 = y). Sample 1: teacher wrong (argmax 2, y = 1) → swap.
    terms = DTDLA().loss_terms(make_step(ZS, ZT, Y))
    expected = dtd_la_by_hand(ZS, ZT, Y)
    assert set(terms.sample) == {"ce", "kd"}
    for i, (ce_i, kd_i, _, _) in enumerate(expected):
        assert terms.sample["ce"][i].item() == pytest.approx(ce_i, rel=1e-9)
        assert terms.sample["kd"][i].item() == pytest.approx(kd_i, rel=1e-9)
    # Without LA the wrong sample's KD would differ: the swap is really applied.
    tau1 = expected[1][2]
    unswapped = 0.9 * tau1 * tau1 * kl(softmax(ZT[1], tau1), softmax(ZS[1], tau1))
    assert abs(unswapped - expected[1][1]) > 1e-3


def test_dtd_la_student_gradient_treats_tau_as_constant():
    # d/dzs of α·τ²·KL(q ‖ σ_τ(zs)) = α·τ·(σ_τ(zs) − q) when τ does not depend on zs.
    gamma, alpha = 0.0, 0.9
    step = make_step(ZS, ZT, Y, requires_grad=True)
    DTDLA(gamma=gamma, alpha=alpha).loss_terms(step).sample["kd"].sum().backward()
    for i, (_, _, tau, q) in enumerate(dtd_la_by_hand(ZS, ZT, Y, gamma=gamma, alpha=alpha)):
        ps = softmax(ZS[i], tau)
        expected = [alpha * tau * (a - b) for a, b in zip(ps, q, strict=True)]
        assert step.student_logits.grad[i].tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_dtd_la_is_finite_for_extreme_logits():
    zs = [[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]
    zt = [[-1e4, 1e4, 0.0], [1e4, -1e4, 1e4]]
    step = make_step(zs, zt, [0, 1], dtype=torch.float32, requires_grad=True)
    terms = DTDLA().loss_terms(step)
    total = terms.per_sample_total(step.student_logits)
    assert torch.isfinite(total).all()
    total.sum().backward()
    assert torch.isfinite(step.student_logits.grad).all()


# ---------------------------------------------------------------------------------------------- all three

FACTORIES = {"dkd": DKD, "ctkd": CTKD, "dtd_la": DTDLA}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_contract(name):
    cls = FACTORIES[name]
    assert cls.owns_logit_loss is True
    assert cls.uses_teacher is True
    assert not cls.needs_features and not cls.needs_indices and not cls.full_batches_only
    method = ready(cls(), classes=5, batch=4)
    method.on_epoch_start(7, 240)
    gen = torch.Generator().manual_seed(0)
    zs = torch.randn(4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(4, 5, generator=gen, dtype=torch.float64) * 3
    step = StepInputs(
        student_logits=zs, targets=torch.tensor([0, 1, 2, 3]), indices=torch.arange(4), epoch=7, teacher_logits=zt
    )
    terms = method.loss_terms(step)
    assert terms.sample and not terms.batch
    for value in terms.sample.values():
        assert value.shape == (4,)
        assert value.dtype == torch.float64
        assert torch.isfinite(value).all()
    terms.per_sample_total(zs).mean().backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_bf16_inputs_give_fp32_losses(name):
    method = ready(FACTORIES[name]())
    step = make_step(ZS, ZT, Y, epoch=30, dtype=torch.bfloat16, requires_grad=True)
    terms = method.loss_terms(step)
    for value in terms.sample.values():
        assert value.dtype == torch.float32
    terms.per_sample_total(step.student_logits).mean().backward()
    assert step.student_logits.grad is not None


@pytest.mark.parametrize(
    ("module", "name", "cls"),
    [(dkd_module, "dkd", DKD), (ctkd_module, "ctkd", CTKD), (dtd_la_module, "dtd_la", DTDLA)],
)
def test_each_module_registers_its_method(module, name, cls):
    seen: dict[str, object] = {}
    module.kdbench_register_methods(register=lambda n, factory, **kw: seen.__setitem__(n, factory))
    assert seen == {name: cls}
