"""Feature-based methods (docs/methods.md §4): FitNet, PKT, VID, SRRL — shapes, hand-computed losses, gradients."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
from torch import nn

from kdbench.contracts import DistillationMethod, MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench.errors import KdbenchError
from kdbench_plugins.methods.fitnet import FitNet, hint_regressor
from kdbench_plugins.methods.pkt import PKT, pkt_loss
from kdbench_plugins.methods.srrl import SRRL
from kdbench_plugins.methods.vid import VID
from tests.zoo import CIFAR_MODELS

C = 5  # classes in the synthetic examples


@cache
def zoo_shapes(name: str) -> tuple[tuple[int, ...], ...]:
    """``feature_shapes`` of the real zoo model at 32 px; built on the meta device, so the forward only
    propagates shapes (same result as on CPU, without the compute)."""
    with torch.device("meta"):
        model = CIFAR_MODELS[name]()
    return tuple(feature_shapes(model, 32))


def make_ctx(
    s_shapes, t_shapes, *, classifier: nn.Linear | None = None, student: str = "s", teacher: str = "t"
) -> MethodContext:
    return MethodContext(
        pair=PairInfo(student, teacher), num_classes=C, num_train=100, batch_size=4, epochs=1,
        student_feature_shapes=[tuple(s) for s in s_shapes], teacher_feature_shapes=[tuple(t) for t in t_shapes],
        teacher_classifier=classifier,
    )


def make_step(s_feats, t_feats, *, batch: int, dtype=torch.float32, seed: int = 0) -> StepInputs:
    g = torch.Generator().manual_seed(seed)
    return StepInputs(
        student_logits=torch.randn(batch, C, generator=g, dtype=dtype, requires_grad=True),
        targets=torch.randint(0, C, (batch,), generator=g),
        indices=torch.arange(batch),
        epoch=1,
        teacher_logits=torch.randn(batch, C, generator=g, dtype=dtype),
        student_feats=s_feats,
        teacher_feats=t_feats,
    )


def random_feats(shapes, batch: int, *, grad: bool, dtype=torch.float32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *s, generator=g, dtype=dtype).requires_grad_(grad) for s in shapes]


# Small synthetic networks: [stem, stage1, stage2, stage3, pooled]; the student's stages are narrower and
# one stage differs in resolution, so every code path (regressor, pooling, connector) is exercised.
S_SHAPES = [(4, 8, 8), (4, 8, 8), (6, 4, 4), (8, 2, 2), (8,)]
T_SHAPES = [(6, 8, 8), (6, 4, 4), (10, 8, 8), (12, 2, 2), (12,)]


def build(name: str) -> tuple[DistillationMethod, MethodContext]:
    torch.manual_seed(0)
    head = nn.Linear(T_SHAPES[-1][0], C)
    ctx = make_ctx(S_SHAPES, T_SHAPES, classifier=head)
    method = {"fitnet": FitNet, "pkt": PKT, "vid": VID, "srrl": SRRL}[name]()
    method.setup(ctx)
    return method, ctx


# ----------------------------------------------------------------------------- common contract


@pytest.mark.parametrize("name", ["fitnet", "pkt", "vid", "srrl"])
def test_contract_terms_and_gradients(name):
    method, _ = build(name)
    assert method.needs_features and method.uses_teacher and not method.owns_logit_loss
    batch = 4
    s_feats = random_feats(S_SHAPES, batch, grad=True, seed=1)
    t_feats = random_feats(T_SHAPES, batch, grad=False, seed=2)
    step = make_step(s_feats, t_feats, batch=batch)
    terms = method.loss_terms(step)
    assert set(terms.sample) == {"ce"} and terms.sample["ce"].shape == (batch,)
    assert list(terms.batch) == [name]
    feature_loss = terms.batch[name]
    assert feature_loss.shape == () and torch.isfinite(feature_loss) and feature_loss.dtype == torch.float32
    (terms.sample["ce"].mean() + feature_loss).backward()
    params = list(method.parameters())
    if name == "pkt":
        assert params == []
    else:
        assert params, "extra modules should exist after setup"
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all()
        assert any(p.grad.abs().sum() > 0 for p in params)
    assert any(f.grad is not None and f.grad.abs().sum() > 0 for f in s_feats)


@pytest.mark.parametrize("name", ["fitnet", "pkt", "vid", "srrl"])
def test_bf16_autocast_losses_stay_fp32(name):
    method, _ = build(name)
    batch = 4
    s_feats = random_feats(S_SHAPES, batch, grad=False, dtype=torch.bfloat16, seed=1)
    t_feats = random_feats(T_SHAPES, batch, grad=False, dtype=torch.bfloat16, seed=2)
    step = make_step(s_feats, t_feats, batch=batch, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.loss_terms(step)
    assert terms.sample["ce"].dtype == torch.float32
    assert terms.batch[name].dtype == torch.float32 and torch.isfinite(terms.batch[name])


@pytest.mark.parametrize("name", ["fitnet", "pkt", "vid", "srrl"])
def test_fp64_stays_fp64(name):
    method, _ = build(name)
    method.double()
    s_feats = random_feats(S_SHAPES, 3, grad=False, dtype=torch.float64, seed=1)
    t_feats = random_feats(T_SHAPES, 3, grad=False, dtype=torch.float64, seed=2)
    terms = method.loss_terms(make_step(s_feats, t_feats, batch=3, dtype=torch.float64))
    assert terms.batch[name].dtype == torch.float64


def test_registered_with_defaults():
    from kdbench.registry import Registry
    from kdbench_plugins.methods import fitnet, pkt, srrl, vid

    registry = Registry()
    for module in (fitnet, pkt, vid, srrl):
        module.kdbench_register_methods(lambda name, factory, **kw: registry.register("method", name, factory, **kw))
    expected = {
        "fitnet": {"beta": 100.0, "gamma": 1.0, "hint_layer": 2},
        "pkt": {"beta": 30000.0, "gamma": 1.0},
        "vid": {"beta": 1.0, "gamma": 1.0, "init_variance": 5.0},
        "srrl": {"beta": 1.0, "gamma": 1.0, "alpha": 0.0},
    }
    for name, defaults in expected.items():
        component = registry.get("method", name)
        params = component.parameters()
        assert {k: params[k] for k in defaults} == defaults
        assert params["alpha"] == 0.0
        assert component.description  # the docstring's first line, shown by `kdbench list`


def test_optional_kd_term():
    method = FitNet(alpha=0.5)
    method.setup(make_ctx(S_SHAPES, T_SHAPES))
    step = make_step(random_feats(S_SHAPES, 2, grad=False), random_feats(T_SHAPES, 2, grad=False), batch=2)
    terms = method.loss_terms(step)
    assert set(terms.sample) == {"ce", "kd"} and terms.sample["kd"].shape == (2,)


# ----------------------------------------------------------------------------- FitNet


FITNET_PAIRS = [
    ("resnet32x4", "resnet8x4"),
    ("wrn_40_2", "wrn_16_2"),
    ("wrn_40_2", "wrn_40_1"),
    ("resnet56", "resnet20"),
    ("vgg13", "vgg8"),
    ("resnet32x4", "vgg8"),
    ("resnet32x4", "ShuffleV1"),
    ("resnet32x4", "ShuffleV2"),
    ("wrn_40_2", "MobileNetV2"),
    ("wrn_40_2", "ShuffleV1"),
]


@pytest.mark.parametrize(("teacher", "student"), FITNET_PAIRS)
def test_fitnet_regressor_shapes_on_the_zoo(teacher, student):
    s_shapes, t_shapes = zoo_shapes(student), zoo_shapes(teacher)
    method = FitNet()
    method.setup(make_ctx(s_shapes, t_shapes, student=student, teacher=teacher))
    f_s = torch.randn(2, *s_shapes[2])
    assert method.regressor is not None
    assert method.regressor(f_s).shape == (2, *t_shapes[2])


@pytest.mark.parametrize(
    ("s_shape", "t_shape", "conv_type", "kernel", "stride"),
    [
        ((8, 16, 16), (4, 8, 8), nn.Conv2d, (3, 3), (2, 2)),  # student 2x larger
        ((8, 4, 4), (4, 8, 8), nn.ConvTranspose2d, (4, 4), (2, 2)),  # student 2x smaller
        ((8, 8, 8), (4, 8, 8), nn.Conv2d, (1, 1), (1, 1)),  # same size
        ((8, 10, 9), (4, 8, 8), nn.Conv2d, (3, 2), (1, 1)),  # (1 + dH) x (1 + dW)
    ],
)
def test_fitnet_regressor_kinds(s_shape, t_shape, conv_type, kernel, stride):
    reg = hint_regressor(s_shape, t_shape)
    conv, bn, relu = reg
    assert type(conv) is conv_type and conv.kernel_size == kernel and conv.stride == stride
    assert conv.bias is not None and isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert reg(torch.randn(2, *s_shape)).shape == (2, *t_shape)


def test_fitnet_rejects_unmappable_hint():
    with pytest.raises(KdbenchError, match="hint"):
        hint_regressor((8, 6, 6), (4, 8, 8))
    with pytest.raises(KdbenchError, match="hint_layer"):
        FitNet(hint_layer=7).setup(make_ctx(S_SHAPES, T_SHAPES))


def test_fitnet_loss_by_hand():
    shapes = [(1, 2, 2), (1, 2, 2), (1, 2, 2), (1,)]
    method = FitNet(beta=100.0)
    method.setup(make_ctx(shapes, shapes))
    conv = method.regressor[0]
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    method.eval()  # BN with running stats (mean 0, var 1): y = x / sqrt(1 + 1e-5)
    f_s = torch.tensor([[[[1.0, 2.0], [-1.0, 3.0]]]])
    f_t = torch.tensor([[[[0.5, 2.0], [1.0, 0.0]]]])
    feats = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), f_s, torch.zeros(1, 1)]
    t_feats = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), f_t, torch.zeros(1, 1)]
    terms = method.loss_terms(make_step(feats, t_feats, batch=1))
    scale = 1 / math.sqrt(1 + 1e-5)
    reg = [max(v * scale, 0.0) for v in (1.0, 2.0, -1.0, 3.0)]
    expected = 100.0 * sum((r - t) ** 2 for r, t in zip(reg, (0.5, 2.0, 1.0, 0.0), strict=True)) / 4
    assert terms.batch["fitnet"].item() == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- PKT


def _pkt_by_hand(student: list[list[float]], teacher: list[list[float]], eps: float = 1e-7) -> float:
    def distribution(rows):
        normed = [[v / (math.sqrt(sum(x * x for x in r)) + eps) for v in r] for r in rows]
        sim = [[(sum(a * b for a, b in zip(u, w, strict=True)) + 1) / 2 for w in normed] for u in normed]
        return [[s / sum(row) for s in row] for row in sim]

    p_s, p_t = distribution(student), distribution(teacher)
    n = len(student)
    return sum(p_t[i][j] * math.log((p_t[i][j] + eps) / (p_s[i][j] + eps)) for i in range(n) for j in range(n)) / n**2


def test_pkt_loss_by_hand():
    student, teacher = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 0.0]]
    expected = _pkt_by_hand(student, teacher)
    # Student P = [[2/3, 1/3], [1/3, 2/3]]; teacher cos = 1/√2 off the diagonal.
    c = (1 + 1 / math.sqrt(2)) / 2
    p_t_off, p_t_diag = c / (1 + c), 1 / (1 + c)
    closed = (2 * p_t_diag * math.log(p_t_diag / (2 / 3)) + 2 * p_t_off * math.log(p_t_off / (1 / 3))) / 4
    assert expected == pytest.approx(closed, rel=1e-5)
    got = pkt_loss(torch.tensor(student, dtype=torch.float64), torch.tensor(teacher, dtype=torch.float64))
    assert got.item() == pytest.approx(expected, rel=1e-10)

    method = PKT()
    s_feats = [torch.zeros(2, 1), torch.tensor(student)]
    t_feats = [torch.zeros(2, 1), torch.tensor(teacher)]
    terms = method.loss_terms(make_step(s_feats, t_feats, batch=2))
    assert terms.batch["pkt"].item() == pytest.approx(30000.0 * expected, rel=1e-5)


def test_pkt_zero_when_features_match_and_zero_rows_are_safe():
    x = torch.randn(6, 10, dtype=torch.float64)
    assert pkt_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    x[0] = 0.0  # an all-zero (e.g. dead post-ReLU) pooled vector must not produce NaN
    assert torch.isfinite(pkt_loss(x, torch.randn(6, 3, dtype=torch.float64)))


# ----------------------------------------------------------------------------- VID


def test_vid_initial_variance_is_five():
    method, _ = build("vid")
    assert len(method.regressors) == 3 and len(method.log_scales) == 3
    for variance, shape in zip(method.variances(), T_SHAPES[1:-1], strict=True):
        assert variance.shape == (shape[0],)
        torch.testing.assert_close(variance, torch.full_like(variance, 5.0), rtol=1e-6, atol=0)
    assert method.log_scales[0][0].item() == pytest.approx(math.log(math.exp(5 - 1e-5) - 1), rel=1e-6)


def test_vid_pairs_truncate_to_the_shorter_network():
    method = VID()
    method.setup(make_ctx(zoo_shapes("vgg8"), zoo_shapes("resnet32x4")))
    assert len(method.regressors) == 3  # vgg8 has 4 stages, resnet32x4 3: the first three are paired
    assert [r[0].in_channels for r in method.regressors] == [128, 256, 512]
    assert [r[-1].out_channels for r in method.regressors] == [64, 128, 256]


def test_vid_loss_by_hand():
    # One pair: student 2 channels at 2x2 (pooled to the teacher's 1x1), teacher 2 channels at 1x1.
    s_shapes = [(2, 2, 2), (2, 2, 2), (2,)]
    t_shapes = [(2, 1, 1), (2, 1, 1), (2,)]
    method = VID()
    method.setup(make_ctx(s_shapes, t_shapes))
    with torch.no_grad():
        for conv in method.regressors[0]:
            if isinstance(conv, nn.Conv2d):
                conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        method.log_scales[0].copy_(torch.tensor([math.log(math.expm1(5.0 - 1e-5)), math.log(math.expm1(2.0))]))
    f_s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [1.0, 1.0]]]])  # means 2.5 and 0.5 (≥ 0: ReLU-safe)
    f_t = torch.tensor([[[[1.0]], [[2.0]]]])
    s_feats = [torch.zeros(1, 2, 2, 2), f_s, torch.zeros(1, 2)]
    step = make_step(s_feats, [torch.zeros(1, 2, 1, 1), f_t, torch.zeros(1, 2)], batch=1)
    terms = method.loss_terms(step)
    var = [5.0, 2.0 + 1e-5]
    nll = [0.5 * ((m - t) ** 2 / v + math.log(v)) for m, t, v in zip((2.5, 0.5), (1.0, 2.0), var, strict=True)]
    assert terms.batch["vid"].item() == pytest.approx(sum(nll) / 2, rel=1e-6)


# ----------------------------------------------------------------------------- SRRL


def _srrl_fixture():
    shapes_s = [(2, 1, 1), (2,)]
    shapes_t = [(3, 1, 1), (3,)]
    head = nn.Linear(3, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, 1.0]]))
        head.bias.copy_(torch.tensor([0.1, -0.2]))
    method = SRRL()
    method.setup(make_ctx(shapes_s, shapes_t, classifier=head))
    with torch.no_grad():  # connector: [a, b] -> [a, b, a + b]
        method.connector.conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 2, 1, 1))
    return method, head


def test_srrl_loss_by_hand():
    method, head = _srrl_fixture()
    method.eval()  # BN with running stats: y = x / sqrt(1 + 1e-5)
    f_s = torch.tensor([[1.0, 2.0], [0.5, -3.0]])
    f_t = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 1.0]])
    z_t = torch.tensor([[0.0, 5.0], [1.0, -1.0]])
    step = make_step([torch.zeros(2, 2, 1, 1), f_s], [torch.zeros(2, 3, 1, 1), f_t], batch=2)
    step.teacher_logits = z_t
    terms = method.loss_terms(step)

    scale = 1 / math.sqrt(1 + 1e-5)
    w, b = [[1.0, -1.0, 0.5], [0.0, 2.0, 1.0]], [0.1, -0.2]
    feat_sq = logit_sq = 0.0
    for (a, c), ft, zt in zip(f_s.tolist(), f_t.tolist(), z_t.tolist(), strict=True):
        h = [max(v * scale, 0.0) for v in (a, c, a + c)]
        feat_sq += sum((hv - tv) ** 2 for hv, tv in zip(h, ft, strict=True))
        z = [sum(wk * hk for wk, hk in zip(row, h, strict=True)) + bk for row, bk in zip(w, b, strict=True)]
        logit_sq += sum((zv - tv) ** 2 for zv, tv in zip(z, zt, strict=True))
    assert terms.batch["srrl"].item() == pytest.approx(feat_sq / 6 + logit_sq / 4, rel=1e-6)


def test_srrl_teacher_head_is_frozen_but_passes_gradient():
    method, head = _srrl_fixture()
    head_before = [p.detach().clone() for p in head.parameters()]
    head_ids = {id(p) for p in head.parameters()}
    assert not head_ids & {id(p) for p in method.parameters()}
    assert not any("weight" in k and v.shape == head.weight.shape for k, v in method.state_dict().items())

    student = nn.Linear(4, 2)  # stands in for the student network producing the pooled feature
    x = torch.randn(3, 4)
    params = list(student.parameters()) + list(method.parameters())
    optimizer = torch.optim.SGD(params, lr=0.5, momentum=0.9, weight_decay=5e-4)
    f_t = torch.randn(3, 3)
    for _ in range(2):
        f_s = student(x)
        step = make_step([torch.zeros(3, 2, 1, 1), f_s], [torch.zeros(3, 3, 1, 1), f_t], batch=3)
        step.teacher_logits = torch.randn(3, 2)
        loss = method.loss_terms(step).batch["srrl"]
        optimizer.zero_grad()
        loss.backward()
        assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
        optimizer.step()
    for before, p in zip(head_before, head.parameters(), strict=True):
        assert torch.equal(before, p.detach()) and p.grad is None

    # The gradient on the student's features goes through W_t: the logit-regression term alone
    # (teacher features equal to h, so the feature term is flat) has gradient (2/(B·K))·(W h + b − zt)ᵀ W.
    method, head = _srrl_fixture()  # fresh: the steps above moved the connector
    method.eval()
    f_s = torch.tensor([[1.0, 2.0], [0.5, 0.25], [2.0, 1.0]], requires_grad=True)
    h = method.connector(f_s).detach()
    z_t = torch.randn(3, 2)
    step = make_step([torch.zeros(3, 2, 1, 1), f_s], [torch.zeros(3, 3, 1, 1), h], batch=3)
    step.teacher_logits = z_t
    method.loss_terms(step).batch["srrl"].backward()
    grad_h = 2 / 6 * (h @ head.weight.T + head.bias - z_t) @ head.weight
    scale = 1 / math.sqrt(1 + 1e-5)
    expected = scale * (grad_h[:, :2] + grad_h[:, 2:3])  # h = scale·[a, b, a + b] (all positive here)
    torch.testing.assert_close(f_s.grad, expected.detach(), rtol=1e-5, atol=1e-7)


def test_srrl_single_sample_training_batch():
    method, _ = _srrl_fixture()
    step = make_step([torch.zeros(1, 2, 1, 1), torch.randn(1, 2)], [torch.zeros(1, 3, 1, 1), torch.randn(1, 3)],
                     batch=1)
    step.teacher_logits = torch.randn(1, 2)
    assert torch.isfinite(method.loss_terms(step).batch["srrl"])


def test_srrl_needs_a_teacher_classifier():
    with pytest.raises(KdbenchError, match="classifier"):
        SRRL().setup(make_ctx(S_SHAPES, T_SHAPES))
