"""Time per training step of every registered method on a pair, relative to vanilla KD.

    python benchmarks/method_step_time.py                                # resnet32x4 → resnet8x4, batch 64, CPU
    python benchmarks/method_step_time.py --device cuda --steps 50

One step is what the engine does per batch: augmentation, the teacher's forward pass (with features
when the method needs them), the student's forward and backward passes, the method's loss and the
optimizer step (student plus the method's extra modules). Synthetic CIFAR-shaped data, 100 classes.
"""

from __future__ import annotations

import argparse
import json

import torch

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.evaluate import resolve_device
from kdbench_plugins.datasets.synthetic import make_synthetic


def step_seconds(name: str, teacher: str, student: str, steps: int, batch_size: int, device: str) -> float:
    registry = load_registry()
    # two epochs of `steps` steps: the first warms up (allocations, lazy init), the second is timed
    data = make_synthetic(num_train=steps * batch_size, num_test=batch_size, num_classes=100, seed=0).to(device)
    # lr 0.01: a random teacher on noise data; the step time does not depend on it
    recipe = Recipe(epochs=2, batch_size=batch_size, lr=0.01, small_student_lr=0.01, milestones=()).resolved(student)
    torch.manual_seed(0)
    s = registry.get("model", student).create(num_classes=100)
    t = registry.get("model", teacher).create(num_classes=100).eval()
    comp = registry.get("method", name)
    pair = PairInfo(student, teacher)
    method = comp.factory(**comp.factory.resolve_params(comp.resolve({}), pair))
    method.setup(build_method_context(method, s, t, data, pair, recipe))
    outcome = train(s, method, data, EngineConfig(recipe=recipe, seed=0, device=device), teacher=t)
    epoch = outcome.epochs[-1]
    return epoch.epoch_time_s / max(1, data.num_train // batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", nargs="*", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    names = args.methods or [n for n in load_registry().names("method") if n != "ce"]
    if "kd" not in names:
        names = ["kd", *names]
    times = {n: step_seconds(n, args.teacher, args.student, args.steps, args.batch_size, device) for n in names}
    base = times["kd"]
    print(f"{args.teacher} → {args.student}, batch {args.batch_size}, {device}, {torch.get_num_threads()} threads")
    for name, seconds in sorted(times.items(), key=lambda kv: kv[1]):
        print(f"  {name:8s} {seconds * 1000:8.1f} ms/step  ×{seconds / base:.2f} vs kd")
    print(json.dumps({n: round(s / base, 3) for n, s in times.items()}))


if __name__ == "__main__":
    main()
