"""Training speed of a method on a teacher/student pair, through the engine's own loop (what a run does per
batch: augmentation, the teacher's forward pass, the student's forward and backward, the method's loss and
the optimizer step), on synthetic CIFAR-shaped data. The doctor reports it as images per second; the step
benchmarks (``benchmarks/test_method_steps.py``) time the same call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import Registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train


@dataclass(frozen=True)
class StepSize:
    """The pair, the batch and how many batches one epoch holds."""

    teacher: str
    student: str
    batch_size: int
    steps: int
    image_size: int = 32
    num_classes: int = 100


#: The standard CIFAR-100 pair of the paper (resnet32x4 → resnet8x4), at the recipe's batch of 64.
STANDARD_CPU = StepSize("resnet32x4", "resnet8x4", batch_size=64, steps=3)
STANDARD_GPU = StepSize("resnet32x4", "resnet8x4", batch_size=64, steps=100)


def prepared_run(registry: Registry, name: str, device: str, size: StepSize, epochs: int = 1,
                 params: dict[str, Any] | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(the engine call's arguments, its keyword arguments) for method ``name`` on the pair, set up as a run
    would be: the method's defaults for the pair, its own modules built, the data already on the device."""
    data = registry.get("dataset", "synthetic").create(
        {"num_train": size.steps * size.batch_size, "num_test": size.batch_size, "num_classes": size.num_classes,
         "image_size": size.image_size, "seed": 0}).to(device)
    # lr 0.01: a random teacher on noise data; the step time does not depend on it
    recipe = Recipe(epochs=epochs, batch_size=size.batch_size, lr=0.01, small_student_lr=0.01,
                    milestones=()).resolved(size.student)
    torch.manual_seed(0)
    student = registry.get("model", size.student).create(num_classes=size.num_classes)
    teacher = registry.get("model", size.teacher).create(num_classes=size.num_classes).eval()
    comp = registry.get("method", name)
    pair = PairInfo(size.student, size.teacher)
    method = comp.factory(**comp.factory.resolve_params(comp.resolve(params or {}), pair))
    method.setup(build_method_context(method, student, teacher, data, pair, recipe))
    config = EngineConfig(recipe=recipe, seed=0, device=device, eval_batch_size=size.batch_size)
    return (student, method, data, config), {"teacher": teacher if method.uses_teacher else None}


def images_per_second(registry: Registry, name: str, device: str, size: StepSize,
                      params: dict[str, Any] | None = None) -> float:
    """Training images per second of the second of two epochs (the first takes the allocations, the lazy
    initialisation and on a GPU the kernel choice)."""
    args, kwargs = prepared_run(registry, name, device, size, epochs=2, params=params)
    outcome = train(*args, **kwargs)
    return outcome.epochs[-1].train_images_per_s
