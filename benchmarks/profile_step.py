"""Where a training step's time goes: torch.profiler over the engine's real loop, one method at a time.

    python benchmarks/profile_step.py                          # kd, resnet32x4 → resnet8x4, CPU
    python benchmarks/profile_step.py --method ce --steps 10
    python benchmarks/profile_step.py --device cuda --teacher-cache on --rows 25

Prints the operators by self time and how the step splits into compute (convolutions, matmuls, batch
norm, the loss), data (gather, crop, normalise), optimizer and everything else (host syncs, small
allocations, Python). Speed figures belong here, never in the timed tests.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.evaluate import resolve_device
from kdbench.train.teacher_outputs import CachedTeacherLogits, ViewGrid
from kdbench_plugins.datasets.synthetic import make_synthetic

GROUPS = {
    "compute": ("conv", "mkldnn", "clamp", "addmm", "mm", "bmm", "batch_norm", "relu", "threshold", "softmax", "nll",
                "kl_div", "linear", "avg_pool", "adaptive_avg", "add_", "mul", "sum", "mean", "sub", "div",
                "exp", "log", "max_pool", "cudnn"),
    "data": ("index", "gather", "pad", "flip", "where", "randperm", "randint", "to_copy", "copy_", "_to_copy",
             "contiguous", "clone"),
    "optimizer": ("sgd", "foreach", "zero_", "Optimizer"),
}


def group_of(name: str) -> str:
    low = name.lower()
    for group, needles in GROUPS.items():
        if any(n in low for n in needles):
            return group
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--method", default="kd")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--teacher-cache", choices=["on", "off"], default="off",
                        help="on: serve teacher logits from a cache table (random values of the right shape)")
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the group split here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    registry = load_registry()
    n = args.steps * args.batch_size
    data = make_synthetic(num_train=n, num_test=args.batch_size, num_classes=100, seed=0).to(device)
    recipe = Recipe(epochs=1, batch_size=args.batch_size, milestones=()).resolved(args.student)
    torch.manual_seed(0)
    student = registry.get("model", args.student).create(num_classes=100)
    method = registry.get("method", args.method).create()
    uses_teacher = method.uses_teacher
    teacher = registry.get("model", args.teacher).create(num_classes=100).to(device).eval() if uses_teacher else None
    method.setup(build_method_context(method, student, teacher, data, PairInfo(args.student, args.teacher), recipe))
    source = None
    if teacher is not None and args.teacher_cache == "on":
        grid = ViewGrid(augment=True)
        # what the step costs does not depend on the logits' values: a table of the right shape suffices
        source = CachedTeacherLogits(torch.randn(grid.count, n, 100, device=device), grid)
    config = EngineConfig(recipe=recipe, seed=0, device=device, eval_batch_size=1024)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    cached = {"teacher_logits": source} if source is not None else {}
    train(student, method, data, config, teacher=teacher, **cached)  # warm-up epoch
    with profile(activities=activities) as prof:
        outcome = train(student, method, data, config, teacher=teacher, **cached)
    averages = prof.key_averages()
    sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    print(averages.table(sort_by=sort, row_limit=args.rows))
    attr = "self_device_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    split: dict[str, float] = {}
    for event in averages:
        split[group_of(event.key)] = split.get(group_of(event.key), 0.0) + getattr(event, attr, 0.0) / 1e3
    total = sum(split.values())
    shares = {k: round(100 * v / total, 1) for k, v in sorted(split.items())}
    figures = {"method": args.method, "device": device, "teacher_cache": args.teacher_cache,
               "images_per_s": round(outcome.epochs[-1].train_images_per_s, 1), "self_time_ms": round(total, 1),
               "share_percent": shares}
    print(json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
