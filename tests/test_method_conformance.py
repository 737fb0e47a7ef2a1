"""Conformance of every registered method (built-in or not) with the method contract.

For each method, on every teacher/student pair of the paper's Tables IV–VI: a finite loss on random
inputs of the real feature shapes, gradients reaching the student and every extra module, alone, with
Data Selection, and with Label Revision where §7 allows it. Then a real (tiny) training run through
the engine: the teacher is untouched, and the same seed gives the same weights.
"""

from __future__ import annotations

import functools

import pytest
import torch

from kdbench.contracts import MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.supervision import Supervision
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.revisions.paper import PaperRevision
from tests.zoo import CIFAR_MODELS

REGISTRY = load_registry()
METHODS = REGISTRY.names("method")
PAIRS = [
    ("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_40_1"), ("wrn_40_2", "wrn_16_2"), ("resnet56", "resnet20"),
    ("vgg13", "vgg8"), ("resnet32x4", "vgg8"), ("resnet32x4", "ShuffleV1"), ("resnet32x4", "ShuffleV2"),
    ("wrn_40_2", "MobileNetV2"), ("wrn_40_2", "ShuffleV1"),
]
B, C, N = 8, 100, 64


@functools.cache
def shapes(arch: str) -> list[tuple[int, ...]]:
    return feature_shapes(CIFAR_MODELS[arch](num_classes=C), 32)


@functools.cache
def classifier(arch: str) -> torch.nn.Linear:
    head = CIFAR_MODELS[arch](num_classes=C)
    from kdbench.contracts import classifier_of

    return classifier_of(head).requires_grad_(False)


def make_method(name: str, pair: PairInfo):
    comp = REGISTRY.get("method", name)
    params = comp.factory.resolve_params(comp.resolve({}), pair)
    return comp.factory(**params)


def supervisions(method) -> dict[str, Supervision]:
    mask = torch.zeros(N, dtype=torch.bool)
    mask[: N // 2] = True
    out = {"plain": Supervision()}
    if method.uses_teacher:
        out["DS"] = Supervision(distill_mask=mask)
    if method.uses_teacher and method.accepts_label_revision:  # simkd: no teacher output to revise (§7)
        own = method.owns_logit_loss  # LR revises the teacher target inside the method (docs/methods.md §7)
        out["LR"] = Supervision(revision=PaperRevision(), revision_in_method=own)
        out["LR+DS"] = Supervision(distill_mask=mask, revision=PaperRevision(), revision_in_method=own)
    return out


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
@pytest.mark.parametrize("name", METHODS)
def test_loss_and_gradients_on_real_shapes(name, pair):
    teacher, student = pair
    torch.manual_seed(0)
    info = PairInfo(student, teacher)
    method = make_method(name, info)
    ctx = MethodContext(
        pair=info, num_classes=C, num_train=N, batch_size=B, epochs=240,
        student_feature_shapes=shapes(student), teacher_feature_shapes=shapes(teacher),
        teacher_classifier=classifier(teacher), train_labels=torch.arange(N) % C,
    )
    method.setup(ctx)
    method.on_epoch_start(5, 240)
    for variant, supervision in supervisions(method).items():
        method.zero_grad(set_to_none=True)
        s_feats = [torch.randn(B, *s, requires_grad=True) for s in shapes(student)]
        t_feats = [torch.randn(B, *s) for s in shapes(teacher)]
        s_logits = torch.randn(B, C, requires_grad=True)
        t_logits = torch.randn(B, C) * 3
        indices = torch.arange(B) * 3 % N
        strong = method.needs_strong_view  # the strong view's logits too (mlkd), as the engine gives them
        s_strong = torch.randn(B, C, requires_grad=True) if strong else None
        step = StepInputs(
            student_logits=s_logits, targets=torch.arange(B) % C, indices=indices, epoch=5,
            teacher_logits=t_logits if method.uses_teacher else None,
            student_feats=s_feats if method.needs_features else None,
            teacher_feats=t_feats if method.needs_features else None,
            revise_teacher=supervision.teacher_revision,
            student_logits_strong=s_strong, teacher_logits_strong=torch.randn(B, C) * 3 if strong else None,
        )
        terms = method.loss_terms(step)
        assert all(v.shape == (B,) for v in terms.sample.values()), variant
        assert all(v.dim() == 0 for v in terms.batch.values()), variant
        judged = s_logits  # what the engine gives the supervision: the method's head's logits where it has one
        if method.provides_head:
            assert terms.head_logits is not None and terms.head_logits.shape == (B, C), variant
            judged = terms.head_logits
        loss = supervision.batch_loss(terms, judged, step.teacher_logits, step.targets, indices).total()
        assert loss.dim() == 0 and torch.isfinite(loss), (variant, loss)
        loss.backward()
        student_grads = [t.grad for t in [s_logits, *(s_feats if method.needs_features else [])]]
        assert any(g is not None and g.abs().sum() > 0 for g in student_grads), variant
        if s_strong is not None:
            assert s_strong.grad is not None and s_strong.grad.abs().sum() > 0, variant
        for pname, p in method.named_parameters():
            if p.requires_grad:
                assert p.grad is not None, (variant, pname)
                assert torch.isfinite(p.grad).all(), (variant, pname)
    if method.provides_head:  # evaluation's head is the head the loss judged by (eval mode: no batch statistics)
        method.eval()
        with torch.no_grad():
            feats = [torch.randn(B, *s) for s in shapes(student)]
            step = StepInputs(student_logits=torch.randn(B, C), targets=torch.arange(B) % C, epoch=5,
                              indices=torch.arange(B),
                              teacher_logits=torch.randn(B, C), student_feats=feats,
                              teacher_feats=[torch.randn(B, *s) for s in shapes(teacher)])
            torch.testing.assert_close(method.head_logits(feats, step.student_logits),
                                       method.loss_terms(step).head_logits)


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic(num_train=N, num_test=16, num_classes=4, image_size=16, seed=0)


def engine_run(name, data, supervision=None, seed=0):
    # a smoke run on a random teacher: lr 0.01 keeps the published β (SemCKD's 400) from diverging on toy data
    recipe = Recipe(epochs=1, batch_size=B, lr=0.01, milestones=()).resolved("resnet8")
    torch.manual_seed(123)
    teacher = CIFAR_MODELS["resnet14"](num_classes=data.num_classes).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    torch.manual_seed(seed)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    method = make_method(name, PairInfo("resnet8", "resnet14"))
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", "resnet14"), recipe))
    outcome = train(student, method, data, EngineConfig(recipe=recipe, seed=seed), teacher=teacher,
                    supervision=supervision)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "teacher changed"
    assert all(p.grad is None for p in teacher.parameters()), "teacher got a gradient"
    return student, outcome


@pytest.mark.parametrize("name", METHODS)
def test_trains_in_the_engine_deterministically(name, tiny):
    method = make_method(name, PairInfo("resnet8", "resnet14"))
    for variant, supervision in supervisions(method).items():
        a, outcome = engine_run(name, tiny, supervision)
        assert all(torch.isfinite(torch.tensor(m.train_loss)) for m in outcome.epochs), variant
        assert all(torch.isfinite(v).all() for v in a.state_dict().values() if v.is_floating_point()), variant
        if variant == "plain":
            b, _ = engine_run(name, tiny, supervision)
            assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict()), "not deterministic"
