"""The training loop: learning, determinism, Data Selection masks, NaN handling, resume."""

from __future__ import annotations

import pytest
import torch

from kdbench.contracts import DistillationMethod, LossTerms, PairInfo
from kdbench.plan import Recipe
from kdbench.store import ResumeFile
from kdbench.train.callbacks import Callback
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, TrainingDiverged, train
from kdbench.train.supervision import Supervision
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.methods.ce import CrossEntropy
from kdbench_plugins.methods.kd import HintonKD
from tests.zoo import CIFAR_MODELS


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_train=96, num_test=48, num_classes=4, image_size=8, seed=1)


def recipe(epochs=3, **kw):
    return Recipe(epochs=epochs, batch_size=32, lr=0.05, milestones=(2,), **kw).resolved("resnet8")


def run(data, method, epochs=3, seed=0, teacher=None, **kw):
    torch.manual_seed(seed)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", None), recipe(epochs)))
    outcome = train(student, method, data, EngineConfig(recipe=recipe(epochs), seed=seed), teacher=teacher, **kw)
    return student, outcome


def fixed_teacher(data):
    torch.manual_seed(123)
    return CIFAR_MODELS["resnet8"](num_classes=data.num_classes).eval()


def test_training_learns_and_records_every_epoch(data):
    _, outcome = run(data, CrossEntropy(), epochs=4)
    assert [m.epoch for m in outcome.epochs] == [1, 2, 3, 4]
    assert [m.lr for m in outcome.epochs] == pytest.approx([0.05, 0.05, 0.005, 0.005])
    assert outcome.epochs[-1].train_loss < outcome.epochs[0].train_loss
    assert outcome.best.test_top1 > 100 / data.num_classes
    assert outcome.last_top1 == outcome.epochs[-1].test_top1
    assert all("ce" in m.losses for m in outcome.epochs)


def test_same_seed_same_weights_other_seed_differs(data):
    a, _ = run(data, CrossEntropy(), epochs=1, seed=0)
    b, _ = run(data, CrossEntropy(), epochs=1, seed=0)
    c, _ = run(data, CrossEntropy(), epochs=1, seed=1)
    wa, wb, wc = (m.state_dict()["conv1.weight"] for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_teacher_gets_no_gradient_and_stays_in_eval(data):
    teacher = fixed_teacher(data)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    run(data, HintonKD(), epochs=1, teacher=teacher)
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN stats too


def test_distill_mask_routes_samples(data):
    teacher = fixed_teacher(data)
    none_distilled, _ = run(data, HintonKD(), epochs=1, teacher=teacher,
                            supervision=Supervision(torch.zeros(data.num_train, dtype=torch.bool)))
    plain_ce, _ = run(data, CrossEntropy(), epochs=1)
    all_distilled, _ = run(data, HintonKD(), epochs=1, teacher=teacher,
                           supervision=Supervision(torch.ones(data.num_train, dtype=torch.bool)))
    kd, _ = run(data, HintonKD(), epochs=1, teacher=teacher)
    key = "fc.weight"
    assert torch.allclose(none_distilled.state_dict()[key], plain_ce.state_dict()[key], atol=1e-6)
    assert torch.allclose(all_distilled.state_dict()[key], kd.state_dict()[key], atol=1e-6)


def test_data_selection_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    targets = torch.tensor([0, 0])
    terms = LossTerms(sample={"a": torch.tensor([10.0, 20.0], dtype=torch.float64)},
                      batch={"feat": torch.tensor(3.0, dtype=torch.float64)})
    ce1 = -torch.log_softmax(logits[1], 0)[0]
    rows = torch.arange(2)
    got = Supervision(torch.tensor([True, False])).batch_loss(terms, logits, None, targets, rows)
    assert got.total().item() == pytest.approx((10.0 + ce1.item()) / 2 + 3.0)
    assert Supervision().batch_loss(terms, logits, None, targets, rows).total().item() == pytest.approx(15.0 + 3.0)


class Exploding(DistillationMethod):
    uses_teacher = False

    def loss_terms(self, step):
        return LossTerms(sample={"nan": step.student_logits.sum(1) * float("nan")})


def test_nan_loss_stops_with_training_diverged(data):
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        run(data, Exploding(), epochs=2)


def test_resume_from_epoch_checkpoint_matches_uninterrupted(data, tmp_path):
    resume = tmp_path / "resume.pt"
    _, full = run(data, CrossEntropy(), epochs=4)

    class Interrupt(Callback):
        def epoch_end(self, end):
            if end.metrics.epoch == 3:
                raise KeyboardInterrupt

    torch.manual_seed(0)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    config = EngineConfig(recipe=recipe(4), seed=0, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train(student, CrossEntropy(), data, config, checkpointer=ResumeFile(resume), callbacks=[Interrupt()])
    assert torch.load(resume, weights_only=True)["epoch"] == 2
    torch.manual_seed(99)  # a fresh process: different init, all of it replaced by the checkpoint
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    resumed = train(student, CrossEntropy(), data, config, checkpointer=ResumeFile(resume))
    assert [m.epoch for m in resumed.epochs] == [1, 2, 3, 4]
    assert [m.test_top1 for m in resumed.epochs] == pytest.approx([m.test_top1 for m in full.epochs])
    assert resumed.epochs[-1].train_loss == pytest.approx(full.epochs[-1].train_loss, rel=1e-5)
