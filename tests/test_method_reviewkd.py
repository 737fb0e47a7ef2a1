"""ReviewKD (docs/methods.md §4): HCL and the ABF review path against a computation written out here in float64,
per-sample terms and gradients (into the ABF modules too), the warm-up, the pair table, the zoo pairs, the
engine (modules trained, the teacher's pre-activation features, resume)."""

from __future__ import annotations

import math
from functools import cache

import pytest
import torch
from torch import Tensor, nn

from kdbench.contracts import MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench.errors import KdbenchError
from kdbench.registry import load_registry
from kdbench_plugins.methods.reviewkd import ABF, PAIR_BETA, ReviewKD, hcl, hcl_level, warmup_factor
from tests.zoo import CIFAR_MODELS

C = 4  # classes of the synthetic steps
EPS = 1e-5  # BatchNorm's


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- the computation, written out


def mse(a: Tensor, b: Tensor) -> Tensor:
    return ((a - b) ** 2).sum() / a.numel()


def block_mean(x: Tensor, size: int) -> Tensor:
    """Average pooling to ``size``×``size`` of a map whose side is a multiple of ``size``."""
    b, c, h, w = x.shape
    return x.reshape(b, c, size, h // size, size, w // size).mean(dim=(3, 5))


# map side → the pyramid's (pool size, weight) terms after the plain MSE (weight 1): the sizes 4, 2, 1 below the
# side, weighted 1/2, 1/4, 1/8 in that order
PYRAMID = {8: [(4, 1 / 2), (2, 1 / 4), (1, 1 / 8)], 4: [(2, 1 / 2), (1, 1 / 4)], 2: [(1, 1 / 2)], 1: []}


def hcl_by_hand(fs: Tensor, ft: Tensor) -> Tensor:
    terms = PYRAMID[fs.shape[-1]]
    total = mse(fs, ft)
    for size, weight in terms:
        total = total + weight * mse(block_mean(fs, size), block_mean(ft, size))
    return total / (1 + sum(w for _, w in terms))


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    out = torch.einsum("bchw,oc->bohw", x, weight[:, :, 0, 0])
    return out if bias is None else out + bias[None, :, None, None]


def conv3x3(x: Tensor, weight: Tensor) -> Tensor:
    b, c, h, w = x.shape
    padded = torch.zeros(b, c, h + 2, w + 2, dtype=x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    return sum(
        torch.einsum("bchw,oc->bohw", padded[:, :, i : i + h, j : j + w], weight[:, :, i, j])
        for i in range(3)
        for j in range(3)
    )


def bn_train(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]


def upsample(x: Tensor, size: int) -> Tensor:
    """Nearest-neighbour resize by an integer factor: every entry repeated."""
    k = size // x.shape[-1]
    return x.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)


def abf_by_hand(abf: ABF, x: Tensor, residual: Tensor | None, out_size: int) -> tuple[Tensor, Tensor]:
    x = bn_train(conv1x1(x, abf.conv1[0].weight), abf.conv1[1])
    if residual is not None:
        y = upsample(residual, x.shape[-1])
        att = conv1x1(torch.cat([x, y], dim=1), abf.att_conv[0].weight, abf.att_conv[0].bias)
        att = 1 / (1 + torch.exp(-att))
        x = x * att[:, 0:1] + y * att[:, 1:2]
    x = upsample(x, out_size)
    return bn_train(conv3x3(x, abf.conv2[0].weight), abf.conv2[1]), x


# Student [stem, 3@4×4, 4@2×2, pooled 5], teacher [stem, 2@8×8, 3@4×4, pooled 6]: the student's maps are half the
# teacher's, so each ABF resizes, and the three levels exercise pyramids of 3, 2 and 0 pools.
S_SHAPES = [(2, 8, 8), (3, 4, 4), (4, 2, 2), (5,)]
T_SHAPES = [(2, 8, 8), (2, 8, 8), (3, 4, 4), (6,)]


def ctx(s_shapes, t_shapes, pair: PairInfo | None = None) -> MethodContext:
    return MethodContext(
        pair=pair or PairInfo("s", "t"),
        num_classes=C,
        num_train=32,
        batch_size=3,
        epochs=40,
        student_feature_shapes=[tuple(s) for s in s_shapes],
        teacher_feature_shapes=[tuple(t) for t in t_shapes],
    )


def small_method(**params) -> ReviewKD:
    torch.manual_seed(0)
    method = ReviewKD(**params)
    method.setup(ctx(S_SHAPES, T_SHAPES))
    method.double()
    with torch.no_grad():  # BN affine parameters away from (1, 0), so they matter
        for module in method.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return method


def feats(shapes, batch: int, seed: int, grad: bool = False) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *s, generator=g, dtype=torch.float64).requires_grad_(grad) for s in shapes]


def review_loss_by_hand(method: ReviewKD, s_feats: list[Tensor], t_feats: list[Tensor]) -> Tensor:
    b = s_feats[0].shape[0]
    pooled_s, pooled_t = s_feats[-1].reshape(b, -1, 1, 1), t_feats[-1].reshape(b, -1, 1, 1)
    deep, mid_level, shallow = method.abfs  # deepest first
    out_pooled, res = abf_by_hand(deep, pooled_s, None, 1)
    out_2, res = abf_by_hand(mid_level, s_feats[2], res, 4)
    out_1, _ = abf_by_hand(shallow, s_feats[1], res, 8)
    return hcl_by_hand(out_1, t_feats[1]) + hcl_by_hand(out_2, t_feats[2]) + hcl_by_hand(out_pooled, pooled_t)


# ----------------------------------------------------------------------------- HCL and ABF


@pytest.mark.parametrize("side", [8, 4, 2, 1])
def test_hcl_level_against_explicit_pyramid(side):
    g = torch.Generator().manual_seed(side)
    fs = torch.randn(2, 3, side, side, generator=g, dtype=torch.float64)
    ft = torch.randn(2, 3, side, side, generator=g, dtype=torch.float64)
    got = hcl_level(fs, ft)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, hcl_by_hand(fs, ft), rtol=1e-12, atol=0)
    # the weights, spelled out for the 8×8 map: (m + m4/2 + m2/4 + m1/8) / 1.875
    if side == 8:
        parts = [mse(fs, ft)] + [mse(block_mean(fs, s), block_mean(ft, s)) for s in (4, 2, 1)]
        expected = (parts[0] + parts[1] / 2 + parts[2] / 4 + parts[3] / 8) / 1.875
        assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert hcl([fs, fs], [ft, ft]).item() == pytest.approx(2 * got.item(), rel=1e-12)
    assert hcl_level(fs, fs).item() == 0.0


def test_abf_against_explicit_convolutions():
    method = small_method()
    s_feats = feats(S_SHAPES, 3, seed=1)
    abf = method.abfs[1]  # fuses the 4@2×2 student map with the pooled level's residual, resized to 4×4
    residual = torch.randn(3, 5, 1, 1, dtype=torch.float64)
    out, fused = abf(s_feats[2], residual, (4, 4))
    ref_out, ref_fused = abf_by_hand(abf, s_feats[2], residual, 4)
    assert out.shape == (3, 3, 4, 4) and fused.shape == (3, 5, 4, 4)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused, ref_fused, rtol=1e-10, atol=1e-12)


def test_review_loss_terms_and_gradients_against_explicit_computation():
    method = small_method(warmup=0.0, beta=5.0)
    s_feats = feats(S_SHAPES, 3, seed=1, grad=True)
    t_feats = feats(T_SHAPES, 3, seed=2)
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, C, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 3, 1])
    step = StepInputs(
        student_logits=logits,
        targets=targets,
        epoch=7,
        teacher_logits=torch.randn(3, C).double(),
        student_feats=s_feats,
        teacher_feats=t_feats,
    )
    terms = method.loss_terms(step)

    # per-sample output-level term: CE = logsumexp(z) − z_y, one value per sample; the review term is a batch term
    assert set(terms.sample) == {"ce"} and set(terms.batch) == {"reviewkd"}
    expected_ce = torch.stack([torch.log(torch.exp(z).sum()) - z[y] for z, y in zip(logits, targets, strict=True)])
    torch.testing.assert_close(terms.sample["ce"], expected_ce, rtol=1e-12, atol=0)
    expected = 5.0 * review_loss_by_hand(method, s_feats, t_feats)
    assert terms.batch["reviewkd"].dtype == torch.float64
    torch.testing.assert_close(terms.batch["reviewkd"], expected, rtol=1e-10, atol=0)

    # gradients of the review term: into the student's features and every ABF parameter, as the explicit one's
    params = [p for p in method.parameters()]
    inputs = [s_feats[1], s_feats[2], s_feats[3], *params]
    got = torch.autograd.grad(terms.batch["reviewkd"], inputs)
    ref = torch.autograd.grad(expected, inputs)
    for name, a, b in zip(["s1", "s2", "pooled", *(n for n, _ in method.named_parameters())], got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12, msg=name)
        assert a.abs().sum() > 0, name
    assert s_feats[0].grad is None  # the stem is no level of ReviewKD
    # the review path: the shallowest output depends on the deepest (pooled) student feature
    shallow_only = hcl_level(method.review(method.levels_of(s_feats))[0], t_feats[1])
    (grad_pooled,) = torch.autograd.grad(shallow_only, [s_feats[3]])
    assert grad_pooled.abs().sum() > 0


def test_pooled_level_with_a_single_sample_uses_running_statistics():
    method = small_method(warmup=0.0)
    s_feats, t_feats = feats(S_SHAPES, 1, seed=1, grad=True), feats(T_SHAPES, 1, seed=2)
    loss = method.review_loss(s_feats, t_feats)  # BatchNorm2d alone would raise on one value per channel
    assert torch.isfinite(loss)
    loss.backward()


def test_warmup_follows_the_reference_epochs():
    # the reference's min(1, epoch/20) on 0-indexed epochs: kdbench's epoch 1 has weight 0, epoch 21 the full weight
    assert [warmup_factor(e, 20.0) for e in (1, 2, 11, 21, 240)] == [0.0, 0.05, 0.5, 1.0, 1.0]
    assert warmup_factor(1, 0.0) == 1.0
    method = small_method(beta=2.0)  # warmup 20 by default
    s_feats, t_feats = feats(S_SHAPES, 3, seed=1), feats(T_SHAPES, 3, seed=2)
    full = method.review_loss(s_feats, t_feats)
    values = []
    for epoch in (1, 11, 30):
        zeros = torch.zeros(3, C, dtype=torch.float64)
        step = StepInputs(
            student_logits=zeros,
            targets=torch.zeros(3, dtype=torch.long),
            epoch=epoch,
            student_feats=s_feats,
            teacher_feats=t_feats,
        )
        values.append(method.loss_terms(step).batch["reviewkd"].item())
    assert values == pytest.approx([0.0, 0.5 * 2.0 * full.item(), 2.0 * full.item()], rel=1e-10)


def test_bf16_autocast_loss_stays_fp32():
    torch.manual_seed(0)
    method = ReviewKD(warmup=0.0)
    method.setup(ctx(S_SHAPES, T_SHAPES))
    s_feats = [torch.randn(3, *s).bfloat16() for s in S_SHAPES]
    t_feats = [torch.randn(3, *s).bfloat16() for s in T_SHAPES]
    step = StepInputs(
        student_logits=torch.randn(3, C).bfloat16(),
        targets=torch.tensor([0, 1, 2]),
        epoch=3,
        teacher_logits=torch.randn(3, C).bfloat16(),
        student_feats=s_feats,
        teacher_feats=t_feats,
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.loss_terms(step)
    assert terms.batch["reviewkd"].dtype == torch.float32 and torch.isfinite(terms.batch["reviewkd"])
    assert terms.sample["ce"].dtype == torch.float32


# ----------------------------------------------------------------------------- defaults, pairs, errors


def test_registered_with_the_reference_defaults():
    component = load_registry().get("method", "reviewkd")
    assert component.parameters() == {
        "beta": None,
        "gamma": 1.0,
        "warmup": None,
        "student_preact": None,
        "max_mid_channels": 512,
        "alpha": 0.0,
        "T": 4.0,
    }
    assert component.factory.needs_features and component.factory.teacher_preact
    assert not component.factory.owns_logit_loss and component.factory.uses_teacher
    resolve = component.factory.resolve_params
    assert resolve({}, PairInfo("resnet8x4", "resnet32x4")) == {"beta": 5.0, "warmup": 20.0, "student_preact": False}
    assert resolve({}, PairInfo("ShuffleV2", "resnet32x4"))["beta"] == 8.0
    assert resolve({}, PairInfo("resnet20", "resnet56"))["beta"] == 0.6
    assert resolve({}, PairInfo("vgg8", "vgg13"))["beta"] == 1.0  # not in the reference's scripts: train.py's default
    assert resolve({"beta": 3.0}, PairInfo("resnet8x4", "resnet32x4"))["beta"] == 3.0
    assert resolve({}, PairInfo("imagenet_resnet18", "imagenet_resnet34")) == {
        "beta": 1.0,
        "warmup": 0.0,
        "student_preact": True,
    }
    assert len(PAIR_BETA) == 8


@cache
def zoo_shapes(name: str, preact: bool = False) -> list[tuple[int, ...]]:
    with torch.device("meta"):
        model = CIFAR_MODELS[name]()
    return feature_shapes(model, 32, preact=preact)


def abf_layout(teacher: str, student: str) -> tuple[list, list, list, int]:
    """(in channels, out channels, out sizes) shallow to deep, and the mid width, as the reference's configs say."""
    method = ReviewKD(**ReviewKD.resolve_params({}, PairInfo(student, teacher)))
    method.setup(ctx(zoo_shapes(student), zoo_shapes(teacher, preact=True), PairInfo(student, teacher)))
    shallow_first = list(method.abfs)[::-1]
    return (
        [a.conv1[0].in_channels for a in shallow_first],
        [a.conv2[0].out_channels for a in shallow_first],
        [s[0] for s in method.out_sizes],
        shallow_first[0].conv1[0].out_channels,
    )


@pytest.mark.parametrize(("teacher", "student", "layout"), [
    # CIFAR-100/model/reviewkd.py build_review_kd: in_channels, out_channels, out_shapes (shallow to deep), mid
    ("resnet32x4", "resnet8x4", ([64, 128, 256, 256], [64, 128, 256, 256], [32, 16, 8, 1], 256)),
    ("wrn_40_2", "wrn_16_2", ([32, 64, 128, 128], [32, 64, 128, 128], [32, 16, 8, 1], 128)),
    ("resnet56", "resnet20", ([16, 32, 64, 64], [16, 32, 64, 64], [32, 16, 8, 1], 64)),
    ("resnet32x4", "ShuffleV1", ([240, 480, 960, 960], [64, 128, 256, 256], [32, 16, 8, 1], 512)),
    ("wrn_40_2", "ShuffleV1", ([240, 480, 960, 960], [32, 64, 128, 128], [32, 16, 8, 1], 512)),
    ("resnet32x4", "ShuffleV2", ([116, 232, 464, 1024], [64, 128, 256, 256], [32, 16, 8, 1], 512)),
    ("vgg13", "MobileNetV2", ([12, 16, 48, 160, 1280], [128, 256, 512, 512, 512], [16, 8, 4, 4, 1], 512)),
    ("ResNet50", "vgg8", ([128, 256, 512, 512, 512], [256, 512, 1024, 2048, 2048], [32, 16, 8, 4, 1], 512)),
    # not in the reference: stage maps pair from the first, the longer network's deepest extra stage left out
    ("resnet32x4", "vgg8", ([128, 256, 512, 512], [64, 128, 256, 256], [32, 16, 8, 1], 512)),
    ("wrn_40_2", "MobileNetV2", ([12, 16, 48, 1280], [32, 64, 128, 128], [32, 16, 8, 1], 512)),
])  # fmt: skip
def test_abfs_sized_from_the_pair_as_the_reference_configures_them(teacher, student, layout):
    assert abf_layout(teacher, student) == layout


def test_unsupported_features_are_one_line_errors():
    with pytest.raises(KdbenchError, match="stage maps") as info:
        ReviewKD().setup(ctx([(4,)], T_SHAPES))  # a student with a pooled vector only
    assert "\n" not in str(info.value)

    class NoPreact(nn.Module):  # a third-party model that knows only the base contract
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 2)

        def forward(self, x, features=False):
            f = self.conv(x)
            pooled = f.mean(dim=(2, 3))
            return ([x, f, pooled], self.fc(pooled)) if features else self.fc(pooled)

    with pytest.raises(KdbenchError, match="pre-activation") as info:
        feature_shapes(NoPreact(), 8, preact=True)
    assert "\n" not in str(info.value)
    assert feature_shapes(NoPreact(), 8) == [(3, 8, 8), (4, 8, 8), (4,)]


# ----------------------------------------------------------------------------- through the engine


class Recording(nn.Module):
    """A teacher that notes how it is called."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x, features=False, preact=False):
        self.calls.append((features, preact))
        return self.inner(x, features=features, preact=preact) if features else self.inner(x)


@pytest.fixture(scope="module")
def tiny():
    from kdbench_plugins.datasets.synthetic import make_synthetic

    return make_synthetic(num_train=48, num_test=16, num_classes=C, image_size=8, seed=0)


def engine_run(data, method, *, epochs=1, init_seed=0, teacher_wrapper=None, initial=None, **kw):
    from kdbench.plan import Recipe
    from kdbench.train.context import build_method_context
    from kdbench.train.engine import EngineConfig, train

    recipe = Recipe(epochs=epochs, batch_size=16, lr=0.05, milestones=(10,)).resolved("resnet8")
    torch.manual_seed(123)
    teacher = CIFAR_MODELS["resnet14"](num_classes=data.num_classes).eval()
    if teacher_wrapper is not None:
        teacher = teacher_wrapper(teacher)
    torch.manual_seed(init_seed)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    pair = PairInfo("resnet8", "resnet14")
    method.setup(build_method_context(method, student, teacher, data, pair, recipe))
    if initial is not None:
        initial.update({k: v.clone() for k, v in method.state_dict().items()})
    config = EngineConfig(recipe=recipe, seed=0, **kw.pop("config", {}))
    return student, train(student, method, data, config, teacher=teacher, **kw)


def test_engine_trains_the_abfs_on_the_teachers_preactivation_features(tiny):
    method = ReviewKD(warmup=0.0)
    recording = []

    def wrap(teacher):
        recording.append(Recording(teacher))
        return recording[-1]

    initial: dict[str, Tensor] = {}
    _, outcome = engine_run(tiny, method, teacher_wrapper=wrap, initial=initial)
    assert {call for call in recording[0].calls if call[0]} == {(True, True)}  # every feature pass: preact
    assert outcome.epochs[-1].losses["reviewkd"] > 0 and math.isfinite(outcome.epochs[-1].train_loss)
    # every parameter of the ABFs moved with the student's optimizer (3 steps)
    trained = method.state_dict()
    assert trained.keys() == initial.keys()
    for name, value in method.named_parameters():
        assert not torch.equal(value.detach(), initial[name]), name


def test_engine_resumes_the_abfs_from_the_checkpoint(tiny, tmp_path):
    from kdbench.store import ResumeFile
    from kdbench.train.callbacks import Callback

    full_method = ReviewKD(warmup=0.0)
    full, _ = engine_run(tiny, full_method, epochs=2)

    class Interrupt(Callback):
        def epoch_end(self, end):
            if end.metrics.epoch == 2:  # after epoch 1's resume checkpoint, before the run ends
                raise KeyboardInterrupt

    resume = tmp_path / "resume.pt"
    with pytest.raises(KeyboardInterrupt):
        engine_run(
            tiny,
            ReviewKD(warmup=0.0),
            epochs=2,
            checkpointer=ResumeFile(resume),
            callbacks=[Interrupt()],
            config={"checkpoint_every": 1},
        )
    saved = torch.load(resume, weights_only=True)
    assert saved["epoch"] == 1 and any(k.startswith("abfs.") for k in saved["method"])
    resumed_method = ReviewKD(warmup=0.0)
    resumed, _ = engine_run(
        tiny, resumed_method, epochs=2, init_seed=99, checkpointer=ResumeFile(resume), config={"checkpoint_every": 1}
    )
    for name, value in full_method.state_dict().items():
        torch.testing.assert_close(resumed_method.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(resumed.state_dict()["fc.weight"], full.state_dict()["fc.weight"], rtol=1e-5, atol=1e-6)
