"""The image-folder stream: loading alone (JPEG decode + RandomResizedCrop + flip + normalise, each sample's
crop seeded by epoch and index) and a training epoch from the stream through the engine's own loop.

The folder is generated: smooth random 375×500 JPEGs (ImageNet's typical size), one validation image per
class. The loader test times one epoch of a stream whose DataLoader workers are already up (they persist
across epochs, as in training), in process and with 2 worker processes. The step test is a KD epoch,
ResNet18 student and ResNet34 teacher (torchvision's ImageNet models), decoding in process on a CPU at
64 px; ``--bench-device cuda`` uses 224 px, larger batches and 8 workers. The ImageNet-sized epoch on a
GPU is ``python benchmarks/stream_step.py --device cuda --images 4096 --workers 8``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from folders import write_folder, write_val_split

from kdbench.contracts import PairInfo, StreamRequest
from kdbench.plan import Recipe
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench_plugins.datasets.imagefolder import load_imagefolder

CPU = {"images": 128, "classes": 8, "loader_batch": 32,
       "step_images": 64, "step_size": 64, "step_batch": 32, "step_workers": 0}
GPU = {"images": 1024, "classes": 16, "loader_batch": 64,
       "step_images": 2048, "step_size": 224, "step_batch": 128, "step_workers": 8}


@pytest.fixture(scope="module")
def size(bench) -> dict:
    return GPU if bench.gpu else CPU


def generated_folder(root: Path, images: int, classes: int) -> Path:
    write_folder(root, images, classes, 375, 500)
    write_val_split(root)
    os.sync()  # the new files' writeback would otherwise land in the middle of a timed epoch
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory, size) -> Path:
    return generated_folder(tmp_path_factory.mktemp("imagefolder"), size["images"], size["classes"])


@pytest.mark.parametrize("workers", [0, 2], ids=lambda w: f"{w}_workers")
def test_stream_epoch(benchmark, size, folder, workers):
    data = load_imagefolder(path=str(folder))
    stream = data.open("train", StreamRequest(batch_size=size["loader_batch"], shuffle=True, augment=True,
                                              workers=workers))
    epochs = itertools.count()

    def one_epoch() -> int:
        return sum(len(batch.labels) for batch in stream.epoch(next(epochs)))

    benchmark.group = f"image-folder stream: {size['images']} JPEGs 375×500 → 224, batch {size['loader_batch']}"
    try:
        # the warm-up epoch starts the workers and fills the page cache
        seen = benchmark.pedantic(one_epoch, rounds=5, iterations=1, warmup_rounds=1)
    finally:
        stream.close()
    assert seen == size["images"]
    benchmark.extra_info["images_per_s"] = round(seen / benchmark.stats.stats.mean, 1)


def test_stream_step(benchmark, bench, registry, size, tmp_path):
    folder = generated_folder(tmp_path, size["step_images"], size["classes"])
    data = registry.get("dataset", "imagefolder").create({"path": str(folder), "image_size": size["step_size"]},
                                                         root=None, download=False)
    student = registry.get("model", "imagenet_resnet18").create(num_classes=data.num_classes)
    teacher = registry.get("model", "imagenet_resnet34").create(num_classes=data.num_classes).eval()
    method = registry.get("method", "kd").create({"T": 1.0})
    recipe = Recipe(epochs=1, batch_size=size["step_batch"], lr=0.1, milestones=(), weight_decay=1e-4,
                    drop_last=True).resolved("imagenet_resnet18")
    method.setup(build_method_context(method, student, teacher, data, PairInfo("imagenet_resnet18", None), recipe))
    config = EngineConfig(recipe=recipe, seed=0, device=bench.device, loader_workers=size["step_workers"],
                          eval_batch_size=size["step_batch"])
    benchmark.group = (f"streamed KD epoch: resnet34 → resnet18, {size['step_images']} images at "
                       f"{size['step_size']} px, batch {size['step_batch']}, {size['step_workers']} workers")
    benchmark.pedantic(train, args=(student, method, data, config), kwargs={"teacher": teacher}, rounds=5,
                       iterations=1, warmup_rounds=1)
    images = size["step_images"] // size["step_batch"] * size["step_batch"]
    benchmark.extra_info["images_per_s"] = round(images / benchmark.stats.stats.mean, 1)
