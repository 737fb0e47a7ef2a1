"""Training throughput (images/s) of a student alone and with a frozen teacher, through the real engine.

    python benchmarks/throughput.py                       # resnet8x4 alone and with resnet32x4 (CPU)
    python benchmarks/throughput.py --device cuda --steps 200 --batch-size 64

Measures the engine's own training loop (augmentation, forward/backward, teacher forward) on
synthetic CIFAR-shaped data; evaluation is excluded. Speed lives here, never in the timed tests.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.evaluate import resolve_device
from kdbench_plugins.datasets.synthetic import make_synthetic


def measure(student: str, teacher: str | None, method: str, steps: int, batch_size: int, device: str) -> float:
    registry = load_registry()
    data = make_synthetic(num_train=steps * batch_size, num_test=batch_size, num_classes=100, seed=0).to(device)
    recipe = Recipe(epochs=1, batch_size=batch_size, milestones=()).resolved(student)
    torch.manual_seed(0)
    s = registry.get("model", student).create(num_classes=100)
    t = registry.get("model", teacher).create(num_classes=100).eval() if teacher else None
    m = registry.get("method", method).create()
    m.setup(build_method_context(m, s, t, data, PairInfo(student, teacher), recipe))
    start = time.perf_counter()
    outcome = train(s, m, data, EngineConfig(recipe=recipe, seed=0, device=device), teacher=t)
    total = time.perf_counter() - start
    return outcome.epochs[-1].train_images_per_s, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    results = {}
    cases = [("student alone (ce)", None, "ce"), (f"with {args.teacher} (kd)", args.teacher, "kd")]
    for label, teacher, method in cases:
        ips, total = measure(args.student, teacher, method, args.steps, args.batch_size, device)
        results[label] = round(ips, 1)
        print(f"{args.student} {label}: {ips:.1f} images/s ({args.steps} steps of {args.batch_size}, {total:.1f} s)")
    print(json.dumps({"device": device, "threads": torch.get_num_threads(), **results}))


if __name__ == "__main__":
    main()
