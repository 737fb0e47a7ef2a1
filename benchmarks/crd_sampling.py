"""CRD's negatives without replacement (issue 19) against the old i.i.d. draws: sampling alone and a training step.

    python benchmarks/crd_sampling.py --device cpu                      # resnet32x4 → resnet8x4, batch 64
    python benchmarks/crd_sampling.py --device cuda --steps 50
    python benchmarks/crd_sampling.py --steps 2 --sample-reps 5         # quick (tox -e bench)

Synthetic 32×32 inputs, CIFAR-100-sized labels (N = 50,000, 100 classes of 500; ``--unequal`` gives
classes of 250 to 750 samples, which exercises the masked keys) and K = 16,384 negatives. One step is the
student's forward and backward passes with the CRD loss (its CE and NCE terms), the teacher's forward pass
under no_grad and an SGD step of the student and CRD's embeddings. Old and new steps alternate so that
drift hits both alike; the table gives medians. The old sampler is kept here only for the comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import types
from collections.abc import Callable

import torch
from torch import Tensor

from kdbench import create_model
from kdbench.contracts import MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench.train.evaluate import resolve_device
from kdbench_plugins.methods import crd as crd_module
from kdbench_plugins.methods.crd import CRD


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


def labels_for(num_train: int, num_classes: int, unequal: bool) -> Tensor:
    """Shuffled labels: equal classes, or sizes rising linearly from half to 1.5 times the mean."""
    if unequal:
        weights = torch.linspace(0.5, 1.5, num_classes)
        sizes = (weights / weights.sum() * num_train).long()
        sizes[-1] += num_train - int(sizes.sum())
        labels = torch.repeat_interleave(torch.arange(num_classes), sizes)
    else:
        labels = torch.arange(num_train) % num_classes
    return labels[torch.randperm(num_train, generator=torch.Generator().manual_seed(0))]


def timed(fn: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-train", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--negatives", type=int, default=16_384)
    parser.add_argument("--unequal", action="store_true", help="classes of unequal sizes (masked dense keys)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per sampler (after one warm-up each)")
    parser.add_argument("--sample-reps", type=int, default=30, help="timed calls of the samplers alone")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu or cuda")
    args = parser.parse_args()
    device = resolve_device(args.device)

    torch.manual_seed(0)
    labels = labels_for(args.num_train, args.classes, args.unequal)
    student = create_model(args.student, num_classes=args.classes).to(device)
    teacher = create_model(args.teacher, num_classes=args.classes).to(device).eval()
    method = CRD(num_negatives=args.negatives)
    method.setup(MethodContext(
        pair=PairInfo(args.student, args.teacher), num_classes=args.classes, num_train=args.num_train,
        batch_size=args.batch_size, epochs=1, student_feature_shapes=feature_shapes(student),
        teacher_feature_shapes=feature_shapes(teacher), train_labels=labels,
    ))
    method.to(device).train()
    new_sampler = method.sample_negatives
    old_sampler = types.MethodType(old_sample_negatives, method)
    params = [*student.parameters(), *method.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(1)

    def batch() -> tuple[Tensor, Tensor, Tensor]:
        indices = torch.randint(args.num_train, (args.batch_size,), generator=gen)
        images = torch.randn(args.batch_size, 3, 32, 32, generator=gen)
        return images.to(device), labels[indices].to(device), indices.to(device)

    def step(sampler: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        images, targets, indices = batch()

        def run() -> None:
            method.sample_negatives = sampler  # type: ignore[method-assign]
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

        return run

    samplers = {"old (with replacement)": old_sampler, "new (without replacement)": new_sampler}
    step_times: dict[str, list[float]] = {name: [] for name in samplers}
    for repeat in range(args.steps + 1):  # alternate old and new; the first round warms up
        for name, sampler in samplers.items():
            seconds = timed(step(sampler), device)
            if repeat:
                step_times[name].append(seconds)
    method.sample_negatives = new_sampler  # type: ignore[method-assign]

    def sample_alone(sampler: Callable[[Tensor], Tensor]) -> list[float]:
        indices = batch()[2]
        sampler(indices)  # warm-up
        return [timed(lambda: sampler(indices), device) for _ in range(args.sample_reps)]

    def forced_sparse(indices: Tensor) -> Tensor:
        dense_max, sparse_fraction = crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION
        crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION = 0, 1.0
        try:
            return new_sampler(indices)
        finally:
            crd_module.DENSE_MAX_KEYS, crd_module.SPARSE_MAX_FRACTION = dense_max, sparse_fraction

    chosen, _ = crd_module.negative_strategy(args.batch_size, method._max_other, method._min_other,
                                             method.effective_negatives)
    sample_times = {
        "old (with replacement)": sample_alone(old_sampler),
        f"new ({chosen}, the rule's choice)": sample_alone(new_sampler),
        "new, sparse forced": sample_alone(forced_sparse),
    }

    medians = {name: statistics.median(t) * 1000 for name, t in step_times.items()}
    old_ms, new_ms = medians.values()
    print(f"CRD {args.teacher} → {args.student}, batch {args.batch_size}, N {args.num_train}, "
          f"{args.classes} {'unequal' if args.unequal else 'equal'} classes, K {method.effective_negatives}, "
          f"{device}, {torch.get_num_threads()} threads")
    print(f"  training step (median of {args.steps}):")
    for name, ms in medians.items():
        print(f"    {name:34s} {ms:9.1f} ms")
    print(f"    new / old {new_ms / old_ms:.3f}")
    print(f"  sampling alone (median of {args.sample_reps}):")
    for name, t in sample_times.items():
        print(f"    {name:34s} {statistics.median(t) * 1000:9.2f} ms")
    print(json.dumps({"step_ms": {k: round(v, 2) for k, v in medians.items()},
                      "step_ratio": round(new_ms / old_ms, 3),
                      "sample_ms": {k: round(statistics.median(v) * 1000, 3) for k, v in sample_times.items()}}))


if __name__ == "__main__":
    main()
