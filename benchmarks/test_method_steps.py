"""Training-step time of every registered method, through the engine's own loop.

One timed call is one epoch of ``STEPS`` batches, what the engine does per batch (augmentation, the
teacher's forward pass, with features when the method needs them, the student's forward and backward
passes, the method's loss, the optimizer step of the student and the method's own modules) plus the
epoch's evaluation of one batch. Synthetic CIFAR-shaped data, 100 classes. The CPU pair is the small
resnet20 → resnet8; ``--bench-device cuda`` times resnet32x4 → resnet8x4 (the paper's pair) instead.
``extra_info`` holds the milliseconds per step.
"""

from __future__ import annotations

import pytest
import torch

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench_plugins.datasets.synthetic import make_synthetic

METHODS = load_registry().names("method")
CPU = {"teacher": "resnet20", "student": "resnet8", "batch_size": 32, "steps": 4, "rounds": 7}
GPU = {"teacher": "resnet32x4", "student": "resnet8x4", "batch_size": 64, "steps": 50, "rounds": 5}


def prepared_run(registry, name: str, device: str, size: dict):
    """(the engine call, its arguments) for one method on the benchmark's pair, set up as a run would be."""
    teacher, student, batch_size, steps = size["teacher"], size["student"], size["batch_size"], size["steps"]
    data = make_synthetic(num_train=steps * batch_size, num_test=batch_size, num_classes=100, seed=0).to(device)
    # lr 0.01: a random teacher on noise data; the step time does not depend on it
    recipe = Recipe(epochs=1, batch_size=batch_size, lr=0.01, small_student_lr=0.01, milestones=()).resolved(student)
    torch.manual_seed(0)
    s = registry.get("model", student).create(num_classes=100)
    t = registry.get("model", teacher).create(num_classes=100).eval()
    comp = registry.get("method", name)
    pair = PairInfo(student, teacher)
    method = comp.factory(**comp.factory.resolve_params(comp.resolve({}), pair))
    method.setup(build_method_context(method, s, t, data, pair, recipe))
    config = EngineConfig(recipe=recipe, seed=0, device=device, eval_batch_size=batch_size)
    return (s, method, data, config), {"teacher": t if method.uses_teacher else None}


@pytest.mark.parametrize("name", METHODS)
def test_method_step(benchmark, bench, registry, name):
    size = GPU if bench.gpu else CPU
    args, kwargs = prepared_run(registry, name, bench.device, size)
    benchmark.group = f"method step: {size['teacher']} → {size['student']}, batch {size['batch_size']}, " \
                      f"{size['steps']} steps"
    # the warm-up epoch takes the allocations and lazy initialisation; the engine syncs CUDA at the epoch's end
    benchmark.pedantic(train, args=args, kwargs=kwargs, rounds=size["rounds"], iterations=1, warmup_rounds=1)
    benchmark.extra_info["steps"] = size["steps"]
    benchmark.extra_info["ms_per_step_mean"] = round(benchmark.stats.stats.mean * 1000 / size["steps"], 2)
