"""CRD's negatives without replacement (issue 19) against the old i.i.d. draws: sampling alone and a step.

CIFAR-100-sized labels (N = 50,000; 100 classes of 500, or ``unequal`` classes of 250 to 750 samples,
which exercises the masked keys), K = 16,384 negatives, batch 64. Sampling alone: the old sampler (with
replacement, kept here only for the comparison), the new one with the strategy its rule picks, and the
new one forced to the sparse strategy. A step: the student's forward and backward passes with the CRD
loss (its CE and NCE terms), the teacher's forward pass under no_grad and an SGD step of the student and
CRD's embeddings, on synthetic 32×32 inputs; resnet20 → resnet8 on a CPU, resnet32x4 → resnet8x4 with
``--bench-device cuda``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from kdbench import create_model
from kdbench.contracts import MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench_plugins.methods import crd as crd_module
from kdbench_plugins.methods.crd import CRD

NUM_TRAIN, CLASSES, NEGATIVES, BATCH = 50_000, 100, 16_384, 64
CPU_PAIR, GPU_PAIR = ("resnet20", "resnet8"), ("resnet32x4", "resnet8x4")


def old_sample_negatives(self: CRD, indices: Tensor) -> Tensor:
    """kdbench's sampler before issue 19: K i.i.d. draws, with replacement, from the other-class samples."""
    device = self.class_of.device
    cls = self.class_of[indices]
    count = self.class_count[cls].unsqueeze(1)
    start = self.class_start[cls].unsqueeze(1)
    other = self.num_data - count
    gen = self._generator_on(device)
    u = torch.rand(indices.shape[0], self.effective_negatives, generator=gen, device=device, dtype=torch.float64)
    r = torch.minimum((u * other).long(), other - 1)
    return self.by_class[r + count * (r >= start)]


def labels_for(unequal: bool) -> Tensor:
    """Shuffled labels: equal classes, or sizes rising linearly from half to 1.5 times the mean."""
    if unequal:
        weights = torch.linspace(0.5, 1.5, CLASSES)
        sizes = (weights / weights.sum() * NUM_TRAIN).long()
        sizes[-1] += NUM_TRAIN - int(sizes.sum())
        labels = torch.repeat_interleave(torch.arange(CLASSES), sizes)
    else:
        labels = torch.arange(NUM_TRAIN) % CLASSES
    return labels[torch.randperm(NUM_TRAIN, generator=torch.Generator().manual_seed(0))]


@dataclass
class Setup:
    method: CRD
    student: torch.nn.Module
    teacher: torch.nn.Module
    labels: Tensor
    device: str

    def batch(self, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        indices = torch.randint(NUM_TRAIN, (BATCH,), generator=gen)
        images = torch.randn(BATCH, 3, 32, 32, generator=gen)
        return images.to(self.device), self.labels[indices].to(self.device), indices.to(self.device)

    def sampler(self, name: str) -> Callable[[Tensor], Tensor]:
        new = self.method.sample_negatives
        if name == "old":
            return types.MethodType(old_sample_negatives, self.method)
        if name == "new":
            return new

        def forced_sparse(indices: Tensor) -> Tensor:
            dense_max, sparse_fraction = crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION
            crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION = 0, 1.0
            try:
                return new(indices)
            finally:
                crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION = dense_max, sparse_fraction

        return forced_sparse


def make_setup(device: str, pair: tuple[str, str], unequal: bool) -> Setup:
    torch.manual_seed(0)
    teacher_name, student_name = pair
    labels = labels_for(unequal)
    student = create_model(student_name, num_classes=CLASSES).to(device)
    teacher = create_model(teacher_name, num_classes=CLASSES).to(device).eval()
    method = CRD(num_negatives=NEGATIVES)
    method.setup(MethodContext(
        pair=PairInfo(student_name, teacher_name), num_classes=CLASSES, num_train=NUM_TRAIN, batch_size=BATCH,
        epochs=1, student_feature_shapes=feature_shapes(student), teacher_feature_shapes=feature_shapes(teacher),
        train_labels=labels,
    ))
    method.to(device).train()
    return Setup(method, student, teacher, labels, device)


@pytest.fixture(scope="module", params=[False, True], ids=["equal", "unequal"])
def crd(request, bench) -> Setup:
    return make_setup(bench.device, GPU_PAIR if bench.gpu else CPU_PAIR, request.param)


@pytest.fixture(scope="module")
def crd_equal(bench) -> Setup:
    return make_setup(bench.device, GPU_PAIR if bench.gpu else CPU_PAIR, unequal=False)


@pytest.mark.parametrize(("sampler", "rounds"), [pytest.param(name, rounds, id=name) for name, rounds in
                                                  [("old", 30), ("new", 12), ("new_sparse_forced", 5)]])
def test_crd_sampling(benchmark, bench, crd, sampler, rounds):
    draw = crd.sampler(sampler)
    indices = crd.batch(torch.Generator().manual_seed(1))[2]
    chosen, _ = crd_module.negative_strategy(BATCH, crd.method._max_other, crd.method._min_other,
                                             crd.method.effective_negatives)
    benchmark.group = f"CRD negatives alone: N {NUM_TRAIN:,}, K {NEGATIVES:,}, batch {BATCH}"
    benchmark.extra_info["strategy"] = {"old": "iid", "new": chosen, "new_sparse_forced": "sparse"}[sampler]

    def sample() -> Tensor:
        out = draw(indices)
        bench.sync()
        return out

    # fixed rounds of one call (no calibration): every run times the same sequence of draws
    out = benchmark.pedantic(sample, rounds=rounds, iterations=1, warmup_rounds=2)
    assert out.shape == (BATCH, crd.method.effective_negatives)


@pytest.mark.parametrize("sampler", ["old", "new"])
def test_crd_step(benchmark, bench, crd_equal, sampler):
    crd = crd_equal
    method, student, teacher = crd.method, crd.student, crd.teacher
    method.sample_negatives = crd.sampler(sampler)  # type: ignore[method-assign]
    optimizer = torch.optim.SGD([*student.parameters(), *method.parameters()], lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(1)

    def setup() -> tuple[tuple, dict]:
        return (crd.batch(gen),), {}

    def step(batch: tuple[Tensor, Tensor, Tensor]) -> None:
        images, targets, indices = batch
        s_feats, s_logits = student(images, features=True)
        with torch.no_grad():
            t_feats, t_logits = teacher(images, features=True)
        terms = method.loss_terms(StepInputs(
            student_logits=s_logits, targets=targets, epoch=1, indices=indices, teacher_logits=t_logits,
            student_feats=s_feats, teacher_feats=t_feats,
        ))
        loss = terms.sample["ce"].mean() + sum(terms.batch.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bench.sync()

    benchmark.group = f"CRD step: N {NUM_TRAIN:,}, K {NEGATIVES:,}, batch {BATCH}"
    try:
        benchmark.pedantic(step, setup=setup, rounds=8, iterations=1, warmup_rounds=1)
    finally:
        del method.sample_negatives  # the instance attribute: back to the class's sampler
