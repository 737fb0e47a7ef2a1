"""KD at the cost of plain training: an epoch of CE, of KD with the live teacher and of KD served from the
teacher-output cache, and the cache's build (the teacher over every one of an image's 162 views).

Each timed epoch is one engine epoch of ``steps`` batches on synthetic CIFAR-shaped data, 100 classes (the
cached epoch reads a table of the full ``162 × N × 100`` shape with random values: serving costs the same
whatever the logits). The CPU pair is resnet56 → resnet8, whose teacher costs more than the student's
step, as on a GPU; ``--bench-device cuda`` times resnet32x4 → resnet8x4. The build runs in batches of one
view of all its images, as a real build's batches are. For the RepDistiller-style loop,
a full 240-epoch run and the real CIFAR-100 build rate, run ``python benchmarks/teacher_cache.py``.
"""

from __future__ import annotations

import pytest
import torch

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.teacher_outputs import CachedTeacherLogits, ViewGrid, build_teacher_logits
from kdbench_plugins.datasets.synthetic import make_synthetic

CLASSES = 100
# the build's batches hold one view of ``build_images`` images each, as a real build's do (a view of 50,000
# images is many full batches); the CPU build uses the smaller resnet20 to keep 162 views affordable
CPU = {"teacher": "resnet56", "student": "resnet8", "batch_size": 32, "steps": 4, "rounds": 5,
       "build_teacher": "resnet20", "build_images": 4}
GPU = {"teacher": "resnet32x4", "student": "resnet8x4", "batch_size": 64, "steps": 50, "rounds": 5,
       "build_teacher": "resnet32x4", "build_images": 1024}


@pytest.fixture(scope="module")
def size(bench) -> dict:
    return GPU if bench.gpu else CPU


@pytest.mark.parametrize("case", ["ce", "kd_live", "kd_cached"])
def test_epoch(benchmark, bench, registry, size, case):
    device, batch_size = bench.device, size["batch_size"]
    n = size["steps"] * batch_size
    data = make_synthetic(num_train=n, num_test=batch_size, num_classes=CLASSES, seed=0).to(device)
    torch.manual_seed(0)
    student = registry.get("model", size["student"]).create(num_classes=CLASSES)
    teacher = registry.get("model", size["teacher"]).create(num_classes=CLASSES).to(device).eval()
    method = registry.get("method", "ce" if case == "ce" else "kd").create()
    recipe = Recipe(epochs=1, batch_size=batch_size, milestones=()).resolved(size["student"])
    method.setup(build_method_context(method, student, teacher, data, PairInfo(size["student"], size["teacher"]),
                                      recipe))
    grid = ViewGrid(augment=True)
    source = CachedTeacherLogits(torch.randn(grid.count, n, CLASSES, device=device), grid) \
        if case == "kd_cached" else None
    config = EngineConfig(recipe=recipe, seed=0, device=device, eval_batch_size=batch_size)
    benchmark.group = f"epoch: {size['teacher']} → {size['student']}, batch {batch_size}, {size['steps']} steps"
    benchmark.pedantic(train, args=(student, method, data, config),
                       kwargs={"teacher": teacher if case != "ce" else None, "teacher_logits": source},
                       rounds=size["rounds"], iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_s"] = round(n / benchmark.stats.stats.mean, 1)


def test_cache_build(benchmark, bench, registry, size):
    device, images = bench.device, size["build_images"]
    data = make_synthetic(num_train=images, num_test=1, num_classes=CLASSES, seed=1).to(device)
    torch.manual_seed(0)
    teacher = registry.get("model", size["build_teacher"]).create(num_classes=CLASSES).to(device).eval()
    grid = ViewGrid(augment=True)
    table = torch.empty(grid.count, images, CLASSES, device=device)

    def build() -> None:
        build_teacher_logits(teacher, data, grid, lambda r, x: table.view(-1, CLASSES)[r:r + x.shape[0]].copy_(x),
                             batch_size=images, mixed_precision=True, channels_last=bench.gpu)
        bench.sync()

    benchmark.group = f"teacher-output cache build: {size['build_teacher']}, {images} images × {grid.count} views"
    benchmark.pedantic(build, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["views_per_s"] = round(grid.count * images / benchmark.stats.stats.mean, 1)
