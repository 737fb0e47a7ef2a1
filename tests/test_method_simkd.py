"""SimKD (docs/methods.md §4): the projector, the loss and the head against explicit float64 computations written
here; evaluation through the teacher's reused classifier; the record's ``evaluated_head``; the §7 rules."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdbench.cli import main
from kdbench.contracts import MethodContext, PairInfo, StepInputs
from kdbench.errors import KdbenchError
from kdbench.plan import Recipe, expand, load_suite
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.supervision import Supervision
from kdbench_plugins.datasets.digits import load_digits
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.methods.simkd import SimKD
from tests.zoo import CIFAR_MODELS

C = 5
REGISTRY = load_registry()


# ----------------------------------------------------------------------------- explicit reference (float64)


def conv1x1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bchw,oc->bohw", x, w[:, :, 0, 0])


def conv3x3_pad1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    h, wd = x.shape[2:]
    xp = F.pad(x, (1, 1, 1, 1))
    return sum(torch.einsum("bchw,oc->bohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
               for i in range(3) for j in range(3))


def batch_norm(x: torch.Tensor, bn: dict[str, torch.Tensor], training: bool) -> torch.Tensor:
    if training:  # batch statistics, biased variance
        mean = x.mean(dim=(0, 2, 3))
        var = ((x - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
    else:
        mean, var = bn["running_mean"], bn["running_var"]
    scale = bn["weight"] / torch.sqrt(var + 1e-5)
    return (x - mean[None, :, None, None]) * scale[None, :, None, None] + bn["bias"][None, :, None, None]


def reference_projector(x: torch.Tensor, p: dict[str, torch.Tensor], training: bool) -> torch.Tensor:
    """1×1 → BN → ReLU → 3×3 (pad 1) → BN → ReLU → 1×1 → BN → ReLU, no conv bias; ``p`` by state-dict names."""
    def bn(i: int) -> dict[str, torch.Tensor]:
        return {k: p[f"{i}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}

    x = torch.relu(batch_norm(conv1x1(x, p["0.weight"]), bn(1), training))
    x = torch.relu(batch_norm(conv3x3_pad1(x, p["3.weight"]), bn(4), training))
    return torch.relu(batch_norm(conv1x1(x, p["6.weight"]), bn(7), training))


def batch_mean_of_layer(x: torch.Tensor, p: dict[str, torch.Tensor], i: int) -> torch.Tensor:
    """The per-channel batch mean the BN at position ``i`` (1, 4 or 7) of the projector sees in training."""
    with torch.no_grad():
        x = conv1x1(x, p["0.weight"])
        if i > 1:
            x = conv3x3_pad1(torch.relu(batch_norm(x, {k: p[f"1.{k}"] for k in ("weight", "bias")}, True)),
                             p["3.weight"])
        if i > 4:
            x = conv1x1(torch.relu(batch_norm(x, {k: p[f"4.{k}"] for k in ("weight", "bias")}, True)), p["6.weight"])
        return x.mean(dim=(0, 2, 3))


def block_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average pooling of a square map to ``size`` × ``size`` (an integer ratio), by reshaping."""
    b, c, h, _ = x.shape
    k = h // size
    return x.reshape(b, c, size, k, size, k).mean(dim=(3, 5))


def projector_params(method: SimKD, *, grad: bool = False) -> dict[str, torch.Tensor]:
    state = method.projector.state_dict()
    return {k: v.detach().clone().to(torch.float64).requires_grad_(grad and v.is_floating_point()
                                                                      and "running" not in k)
            for k, v in state.items() if "num_batches" not in k}


# ----------------------------------------------------------------------------- fixtures


def make_method(s_shapes, t_shapes, head: nn.Linear, **params) -> SimKD:
    method = SimKD(**params)
    method.setup(MethodContext(pair=PairInfo("s", "t"), num_classes=C, num_train=16, batch_size=4, epochs=1,
                               student_feature_shapes=s_shapes, teacher_feature_shapes=t_shapes,
                               teacher_classifier=head))
    return method


def randomise_bn(method: SimKD, seed: int) -> None:
    """Affine BN values and running statistics away from their 1/0 initial values, so each one matters."""
    g = torch.Generator().manual_seed(seed)
    for m in method.projector.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


# student map 4×4 is larger than the teacher's 2×2 (the student is pooled), and the other way round
CASES = {
    "student_larger": ([(3, 8, 8), (3, 4, 4), (3,)], [(4, 8, 8), (6, 2, 2), (6,)]),
    "teacher_larger": ([(3, 8, 8), (3, 2, 2), (3,)], [(4, 8, 8), (6, 4, 4), (6,)]),
    "same_size": ([(3, 8, 8), (3, 4, 4), (3,)], [(4, 8, 8), (6, 4, 4), (6,)]),
}


@pytest.mark.parametrize("case", CASES)
def test_loss_projector_and_head_by_hand_with_gradients(case):
    s_shapes, t_shapes = CASES[case]
    torch.manual_seed(0)
    head = nn.Linear(6, C).double()
    head_before = [p.detach().clone() for p in head.parameters()]
    method = make_method(s_shapes, t_shapes, head, beta=0.7).double()
    randomise_bn(method, 1)
    assert method.projector[0].weight.shape == (3, 3, 1, 1)  # 6 // factor 2 = 3 bottleneck channels
    assert method.projector[3].weight.shape == (3, 3, 3, 3) and method.projector[6].weight.shape == (6, 3, 1, 1)
    assert all(isinstance(m, nn.Conv2d) and m.bias is None for m in method.projector[::3])

    g = torch.Generator().manual_seed(2)
    B = 4
    s_feats = [torch.randn(B, *s, generator=g, dtype=torch.float64, requires_grad=True) for s in s_shapes]
    t_feats = [torch.randn(B, *s, generator=g, dtype=torch.float64) for s in t_shapes]
    targets = torch.tensor([0, 3, 1, 4])
    step = StepInputs(student_logits=torch.randn(B, C, dtype=torch.float64), targets=targets, epoch=1,
                      teacher_logits=torch.randn(B, C, dtype=torch.float64), student_feats=s_feats,
                      teacher_feats=t_feats)
    ref_params = projector_params(method, grad=True)
    terms = method.loss_terms(step)
    assert terms.sample == {} and set(terms.batch) == {"simkd"}  # no CE, no KD: the feature MSE alone

    # the same thing by hand
    f_s = s_feats[-2].detach().clone().requires_grad_()
    f_t = t_feats[-2]
    s_h, t_h = f_s.shape[2], f_t.shape[2]
    source = block_mean(f_s, t_h) if s_h > t_h else f_s
    target = block_mean(f_t, s_h) if s_h < t_h else f_t
    projected = reference_projector(source, ref_params, training=True)
    mse = ((projected - target) ** 2).sum() / projected.numel()
    logits = projected.mean(dim=(2, 3)) @ head.weight.detach().T + head.bias.detach()
    assert terms.batch["simkd"].dtype == torch.float64
    torch.testing.assert_close(terms.batch["simkd"], 0.7 * mse, rtol=1e-12, atol=0)
    torch.testing.assert_close(terms.head_logits, logits, rtol=1e-12, atol=1e-14)

    # gradients of the MSE plus a CE through the frozen teacher head: into the projector and the student's map
    def objective(mse_term, head_logits):
        return mse_term + F.cross_entropy(head_logits, targets)

    objective(terms.batch["simkd"], terms.head_logits).backward()
    objective(0.7 * mse, logits).backward()
    for name, p in method.projector.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, ref_params[name].grad, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(s_feats[-2].grad, f_s.grad, rtol=1e-10, atol=1e-13)
    assert all(p.grad is None for p in head.parameters())  # used detached: never a gradient, never a step
    assert all(torch.equal(a, b) for a, b in zip(head_before, head.parameters(), strict=True))

    # evaluation's head: the same function, BN on its running statistics (which the training step moved once)
    moved = projector_params(method)
    for i in (1, 4, 7):
        torch.testing.assert_close(moved[f"{i}.running_mean"], 0.9 * ref_params[f"{i}.running_mean"]
                                   + 0.1 * batch_mean_of_layer(source.detach(), ref_params, i))
    method.eval()
    with torch.no_grad():
        evaluated = method.head_logits(s_feats, step.student_logits)
        by_hand = reference_projector(source.detach(), moved, training=False).mean(dim=(2, 3))
        torch.testing.assert_close(evaluated, by_hand @ head.weight.T + head.bias, rtol=1e-12, atol=1e-14)


def test_modules_parameters_and_state():
    head = nn.Linear(6, C)
    s_shapes, t_shapes = CASES["student_larger"]
    method = make_method(s_shapes, t_shapes, head, factor=3)
    assert method.projector[0].out_channels == 2  # 6 // 3
    head_ids = {id(p) for p in head.parameters()}
    assert not head_ids & {id(p) for p in method.parameters()}  # the teacher's head is not trained...
    assert all(k.startswith("projector.") for k in method.state_dict())  # ...nor saved with the method
    assert {id(p) for p in method.projector.parameters()} == {id(p) for p in method.parameters()}


def test_setup_refuses_what_it_cannot_reuse():
    s_shapes, t_shapes = CASES["student_larger"]
    with pytest.raises(KdbenchError, match="classifier"):
        make_method(s_shapes, t_shapes, None)
    with pytest.raises(KdbenchError, match="takes 5 inputs .* has 6 channels"):
        make_method(s_shapes, t_shapes, nn.Linear(5, C))  # e.g. ShuffleV2: a 464→1024 conv before its head
    with pytest.raises(KdbenchError, match="factor"):
        SimKD(factor=0)
    with pytest.raises(KdbenchError, match="factor 7"):
        make_method(s_shapes, t_shapes, nn.Linear(6, C), factor=7)


def test_registered_with_the_reference_defaults(registry):
    comp = registry.get("method", "simkd")
    assert comp.factory is SimKD and comp.resolve({}) == {"factor": 2, "beta": 1.0}
    assert SimKD.needs_features and SimKD.provides_head and not SimKD.accepts_label_revision


# ----------------------------------------------------------------------------- through the engine


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic(num_train=48, num_test=40, num_classes=4, image_size=16, seed=0, val_fraction=0.25)


@pytest.fixture(scope="module")
def digits_pair():
    """Real digits at 8 px and a resnet8 teacher trained a little (≈ 35% top-1 of 10 classes; ~4 s on a CPU): a
    teacher classifier that separates samples, so the reused head's predictions vary and beat chance."""
    data = load_digits(image_size=8, val_fraction=0.2)
    torch.manual_seed(5)
    teacher = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    recipe = Recipe(epochs=5, batch_size=32, lr=0.1, milestones=()).resolved("resnet8")
    train(teacher, REGISTRY.get("method", "ce").factory(), data, EngineConfig(recipe=recipe, seed=0))
    return data, teacher.eval().state_dict()


def engine_run(method_name: str, data, teacher_state=None, supervision=None, epochs: int = 2, batch_size: int = 12):
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=0.1, milestones=()).resolved("resnet8")
    torch.manual_seed(5)
    teacher = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    if teacher_state is not None:
        teacher.load_state_dict(teacher_state)
    teacher.eval()
    torch.manual_seed(6)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    method = REGISTRY.get("method", method_name).factory()
    pair = PairInfo("resnet8", "resnet8")
    method.setup(build_method_context(method, student, teacher, data, pair, recipe))
    fc_before = student.fc.weight.detach().clone()
    outcome = train(student, method, data, EngineConfig(recipe=recipe, seed=0), teacher=teacher,
                    supervision=supervision)
    return student, teacher, method, outcome, fc_before


def predictions_by_hand(images_uint8, data, logits_of) -> torch.Tensor:
    mean = torch.tensor(data.mean, dtype=torch.float64)[None, :, None, None]
    std = torch.tensor(data.std, dtype=torch.float64)[None, :, None, None]
    x = (images_uint8.to(torch.float64) / 255 - mean) / std
    return logits_of(x).argmax(1)


def top1(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (predictions == labels).sum().item() / len(labels)


def test_evaluation_goes_through_the_teachers_classifier(digits_pair):
    data, teacher_state = digits_pair
    student, teacher, method, outcome, fc_before = engine_run("simkd", data, teacher_state, epochs=3, batch_size=32)
    assert torch.equal(student.fc.weight, fc_before)  # the student's own classifier is never trained...
    student.eval().double()
    params = projector_params(method)
    t_fc = teacher.fc.double()

    def through_teacher_head(x):
        feats, _ = student(x, features=True)
        return reference_projector(feats[-2], params, training=False).mean(dim=(2, 3)) @ t_fc.weight.T + t_fc.bias

    def own_head(x):
        return student(x)

    with torch.no_grad():
        test = predictions_by_hand(data.test_images, data, through_teacher_head)
        val = predictions_by_hand(data.val_images, data, through_teacher_head)
        own = predictions_by_hand(data.test_images, data, own_head)
    last = outcome.epochs[-1]
    assert last.test_top1 == pytest.approx(top1(test, data.test_labels), abs=1e-9)
    assert last.val_top1 == pytest.approx(top1(val, data.val_labels), abs=1e-9)
    assert top1(test, data.test_labels) > 10 + 5  # above chance: the reused classifier reads the projected map
    assert top1(own, data.test_labels) != pytest.approx(last.test_top1)  # the student's own head is not measured


def test_data_selection_ce_goes_through_the_head(tiny):
    """D_s samples get plain CE on the logits the student is judged by (the head), so the student's own classifier
    stays untouched; KD under the same selection trains it."""
    mask = torch.zeros(tiny.num_train, dtype=torch.bool)
    mask[::2] = True
    student, _, _, outcome, fc_before = engine_run("simkd", tiny, supervision=Supervision(distill_mask=mask))
    assert torch.equal(student.fc.weight, fc_before)
    assert all(torch.isfinite(torch.tensor(m.train_loss)) for m in outcome.epochs)
    assert outcome.epochs[0].train_loss > outcome.epochs[0].losses["simkd"]  # the CE on D_s is in the loss
    kd_student, *_, kd_fc_before = engine_run("kd", tiny, supervision=Supervision(distill_mask=mask))
    assert not torch.equal(kd_student.fc.weight, kd_fc_before)


# ----------------------------------------------------------------------------- suites and records

SUITE = """
    name: simkd_tiny
    dataset: {name: synthetic, params: {num_train: 48, num_test: 24, num_classes: 4, image_size: 8}}
    recipe: {epochs: 1, batch_size: 16, milestones: [], teacher_cache: "on"}
    teacher_recipe: {epochs: 1}
    seeds: [0]
    pairs: [{teacher: resnet14, student: resnet8}]
    methods:
      - kd
      - simkd
      - {name: simkd, selection: {order: random, fraction: 0.5}}
"""


def test_records_say_which_head_was_evaluated(tmp_path, monkeypatch):
    """simkd's records carry ``evaluated_head: method``; kd's have no such field. With the teacher-output cache
    on, kd reads the table while simkd keeps the live teacher (features, and the classifier it reuses)."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = tmp_path / "simkd.yaml"
    suite.write_text(textwrap.dedent(SUITE).lstrip())
    runs = tmp_path / "runs"
    assert main(["run", str(suite), "--quiet", "--runs", str(runs), "--results", str(tmp_path / "none")]) == 0
    files = (runs / "raw" / "simkd_tiny").glob("*/record.json")
    found = {r["label"]: r for r in (json.loads(p.read_text()) for p in files)}
    assert set(found) == {"kd", "simkd", "simkd+DS"}
    assert "evaluated_head" not in found["kd"]
    assert found["simkd"]["evaluated_head"] == found["simkd+DS"]["evaluated_head"] == "method"
    assert found["kd"]["teacher_cache"]["used"] is True
    cache = found["simkd"]["teacher_cache"]
    assert (cache["used"], cache["reason"]) == (False, "the method reads the teacher's features")
    from kdbench.store import RunRecord

    assert RunRecord.model_validate(found["simkd"]).evaluated_head == "method"
    assert RunRecord.model_validate(found["kd"]).evaluated_head == "student"


def test_label_revision_is_refused_when_the_suite_loads(write_suite, registry):
    text = """
        dataset: digits
        pairs: [{teacher: resnet20, student: resnet8}]
        methods:
          - simkd
          - {name: simkd, revision: paper}
    """
    with pytest.raises(KdbenchError, match=r"suite.yaml:5: .*method 'simkd' has no such supervision.*§7"):
        expand(load_suite(write_suite(text)), registry)
    ok = text.replace("revision: paper", "selection: {order: random}")
    assert {r.label for r in expand(load_suite(write_suite(ok)), registry).runs} == {"simkd", "simkd+DS"}


DDP_SUITE = """
    name: simkd_ddp
    dataset: {name: synthetic, params: {num_train: 113, num_test: 60, num_classes: 4, image_size: 8}}
    recipe: {epochs: 1, batch_size: 25, milestones: []}
    teacher_recipe: {epochs: 1}
    seeds: [0]
    pairs: [{teacher: resnet8, student: resnet8}]
    methods: [simkd]
"""


@pytest.mark.slow
def test_two_gloo_processes_train_simkd(tmp_path, monkeypatch):
    """Under DDP the student's own classifier gets no gradient (the head is the method's): DDP is told so, and the
    run ends like one process's up to BatchNorm's per-rank statistics (student and projector)."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = tmp_path / "ddp.yaml"
    suite.write_text(textwrap.dedent(DDP_SUITE).lstrip())
    found = {}
    for name, extra in (("one", []), ("two", ["--nproc", "2"])):
        runs = tmp_path / name
        assert main(["run", str(suite), "--quiet", "--runs", str(runs), "--results", str(tmp_path / "none"),
                     "--threads", "1", *extra]) == 0
        (found[name],) = [json.loads(p.read_text()) for p in (runs / "raw" / "simkd_ddp").glob("*/record.json")]
    assert found["two"]["processes"] == 2 and found["two"]["evaluated_head"] == "method"
    one, two = found["one"]["metrics"][0], found["two"]["metrics"][0]
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=5e-2)
