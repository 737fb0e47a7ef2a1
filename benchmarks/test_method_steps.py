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

from kdbench.registry import load_registry
from kdbench.run.doctor.speed import STANDARD_GPU, StepSize, prepared_run
from kdbench.train.engine import train

METHODS = load_registry().names("method")
CPU = StepSize("resnet20", "resnet8", batch_size=32, steps=4)
GPU = StepSize(STANDARD_GPU.teacher, STANDARD_GPU.student, batch_size=64, steps=50)
ROUNDS = {"cpu": 7, "cuda": 5}


@pytest.mark.parametrize("name", METHODS)
def test_method_step(benchmark, bench, registry, name):
    size = GPU if bench.gpu else CPU
    args, kwargs = prepared_run(registry, name, bench.device, size)
    benchmark.group = f"method step: {size.teacher} → {size.student}, batch {size.batch_size}, {size.steps} steps"
    # the warm-up epoch takes the allocations and lazy initialisation; the engine syncs CUDA at the epoch's end
    rounds = ROUNDS["cuda" if bench.gpu else "cpu"]
    benchmark.pedantic(train, args=args, kwargs=kwargs, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["steps"] = size.steps
    benchmark.extra_info["ms_per_step_mean"] = round(benchmark.stats.stats.mean * 1000 / size.steps, 2)
