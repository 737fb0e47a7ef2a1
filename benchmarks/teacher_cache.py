"""KD at the cost of plain training: CE, KD with the live teacher, KD from the teacher-output cache, the
cache's build rate, and a RepDistiller-style loop on the same machine, all in one run.

    python benchmarks/teacher_cache.py                        # resnet32x4 → resnet8x4, batch 64, CPU
    python benchmarks/teacher_cache.py --device cuda --steps 200 --build-images 2048
    python benchmarks/teacher_cache.py --device cuda --full   # + one 240-epoch KD run on 50,000 images

Every figure is the second of two epochs of ``--steps`` batches on synthetic CIFAR-shaped data (100
classes); the first warms up. The cached run reads a table of the full ``162 × N × 100`` shape; the
build rate (teacher views per second, the table's only cost) is measured on ``--build-images`` images,
since a CPU builds 162 views of 50,000 images in hours, not minutes.

The RepDistiller-style loop is written here from RepDistiller's published training recipe (not its
code): a ``torch.utils.data.DataLoader`` over PIL images with torchvision's RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor and Normalize, the student and the teacher both called for their
features, the teacher under ``no_grad``, CE + KL(T=4) with γ=0.1, α=0.9, SGD, and a ``.item()`` per
step for its running averages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import PairInfo
from kdbench.plan import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.evaluate import resolve_device
from kdbench.train.teacher_outputs import CachedTeacherLogits, ViewGrid, build_teacher_logits
from kdbench_plugins.datasets.synthetic import make_synthetic

CLASSES = 100


def engine_images_per_s(student: nn.Module, method_name: str, teacher: nn.Module | None, data, batch_size: int,
                        device: str, table: torch.Tensor | None = None, epochs: int = 2,
                        compile: bool = False) -> tuple[float, float]:
    """(images/s of the last epoch, seconds end to end) for the engine's loop."""
    registry = load_registry()
    method = registry.get("method", method_name).create()
    recipe = Recipe(epochs=epochs, batch_size=batch_size, milestones=(), compile=compile).resolved("resnet8x4")
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8x4", "resnet32x4"), recipe))
    source = CachedTeacherLogits(table, ViewGrid(augment=True)) if table is not None else None
    start = time.perf_counter()
    outcome = train(student, method, data, EngineConfig(recipe=recipe, seed=0, device=device, eval_batch_size=1024),
                    teacher=teacher, teacher_logits=source)
    return outcome.epochs[-1].train_images_per_s, time.perf_counter() - start


def repdistiller_style_images_per_s(student: nn.Module, teacher: nn.Module | None, data, batch_size: int,
                                    device: str, workers: int) -> float:
    """One warm-up and one timed epoch of a RepDistiller-style loop (see the module docstring)."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    class PilImages(Dataset):
        def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
            self.images, self.labels = images.permute(0, 2, 3, 1).cpu().numpy(), labels.cpu().numpy()
            self.transform = transforms.Compose([
                transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                transforms.Normalize(data.mean, data.std)])

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int):
            return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

    loader = DataLoader(PilImages(data.train_images, data.train_labels), batch_size=batch_size, shuffle=True,
                        num_workers=workers, pin_memory=device.startswith("cuda"))
    student.to(device).train()
    if teacher is not None:
        teacher.to(device).eval()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rate = 0.0
    for _ in range(2):
        seen, start, running = 0, time.perf_counter(), 0.0
        for images, labels in loader:
            images, labels = images.to(device).float(), labels.to(device)
            _, logit_s = student(images, features=True)
            loss = F.cross_entropy(logit_s, labels)
            if teacher is not None:
                with torch.no_grad():
                    feat_t, logit_t = teacher(images, features=True)
                    feat_t = [f.detach() for f in feat_t]
                kl = F.kl_div(F.log_softmax(logit_s / 4, 1), F.softmax(logit_t / 4, 1), reduction="sum") * 16
                loss = 0.1 * loss + 0.9 * kl / images.shape[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()  # its AverageMeter
            seen += images.shape[0]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - start)
    return rate


def build_rate(teacher: nn.Module, images: int, device: str, batch_size: int) -> tuple[float, float]:
    """(teacher views per second, seconds) to build the table of ``images`` training images."""
    data = make_synthetic(num_train=images, num_test=1, num_classes=CLASSES, seed=1).to(device)
    grid = ViewGrid(augment=True)
    table = torch.empty(grid.count, images, CLASSES, device=device)
    start = time.perf_counter()
    build_teacher_logits(teacher, data, grid, lambda r, x: table.view(-1, CLASSES)[r:r + x.shape[0]].copy_(x),
                         batch_size=batch_size, mixed_precision=True, channels_last=device.startswith("cuda"))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return grid.count * images / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="batches per timed epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; figures are medians")
    parser.add_argument("--build-images", type=int, default=16, help="images whose 162 views time the build")
    parser.add_argument("--build-batch", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="DataLoader workers of the RepDistiller-style loop (its default is 8)")
    parser.add_argument("--full", action="store_true", help="also one full KD run from the cache, end to end")
    parser.add_argument("--full-images", type=int, default=50_000)
    parser.add_argument("--full-epochs", type=int, default=240)
    parser.add_argument("--compile", action="store_true", help="torch.compile the student and loss (CUDA)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    registry = load_registry()

    def nets(seed: int = 0) -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(seed)
        return (registry.get("model", "resnet8x4").create(num_classes=CLASSES),
                registry.get("model", "resnet32x4").create(num_classes=CLASSES).to(device).eval())

    n = args.steps * args.batch_size
    data = make_synthetic(num_train=n, num_test=args.batch_size, num_classes=CLASSES, seed=0).to(device)
    grid = ViewGrid(augment=True)
    table = torch.randn(grid.count, n, CLASSES, device=device)  # serving cost does not depend on the values
    figures: dict[str, object] = {"device": device, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                                  "images_per_epoch": n}
    # The cases run interleaved, --repeats rounds, and each figure is its median: a shared or throttled
    # machine slows whichever case runs at the wrong moment, not one case every time.
    cases = {
        "ce_images_per_s": lambda s, t: engine_images_per_s(s, "ce", None, data, args.batch_size, device,
                                                            compile=args.compile)[0],
        "kd_live_images_per_s": lambda s, t: engine_images_per_s(s, "kd", t, data, args.batch_size, device,
                                                                 compile=args.compile)[0],
        "kd_cached_images_per_s": lambda s, t: engine_images_per_s(s, "kd", t, data, args.batch_size, device, table,
                                                                   compile=args.compile)[0],
        "repdistiller_style_ce_images_per_s": lambda s, t: repdistiller_style_images_per_s(
            s, None, data, args.batch_size, device, args.workers),
        "repdistiller_style_kd_images_per_s": lambda s, t: repdistiller_style_images_per_s(
            s, t, data, args.batch_size, device, args.workers),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, measure in cases.items():
            samples[name].append(measure(*nets()))
    figures.update({name: statistics.median(values) for name, values in samples.items()})
    figures["samples"] = {name: [round(v, 1) for v in values] for name, values in samples.items()}
    rate, seconds = build_rate(nets()[1], args.build_images, device, args.build_batch)
    figures.update(build_views_per_s=rate, build_seconds=seconds, build_images=args.build_images,
                   build_seconds_cifar100_estimate=grid.count * 50_000 / rate)
    figures["kd_cached_epoch_cost_vs_ce"] = figures["ce_images_per_s"] / figures["kd_cached_images_per_s"]
    figures["kd_live_epoch_cost_vs_ce"] = figures["ce_images_per_s"] / figures["kd_live_images_per_s"]
    figures["kd_cached_vs_repdistiller_kd"] = (figures["kd_cached_images_per_s"]
                                               / figures["repdistiller_style_kd_images_per_s"])
    if args.full:
        full = make_synthetic(num_train=args.full_images, num_test=10_000, num_classes=CLASSES, seed=0).to(device)
        s, t = nets()
        start = time.perf_counter()
        big = torch.empty(grid.count, args.full_images, CLASSES, device=device)
        build_teacher_logits(t, full, grid, lambda r, x: big.view(-1, CLASSES)[r:r + x.shape[0]].copy_(x),
                             batch_size=args.build_batch, mixed_precision=True, channels_last=device.startswith("cuda"))
        built = time.perf_counter() - start
        ips, trained = engine_images_per_s(s, "kd", t, full, args.batch_size, device, big, epochs=args.full_epochs,
                                           compile=args.compile)
        figures.update(full_images=args.full_images, full_epochs=args.full_epochs, full_build_seconds=built,
                       full_train_seconds=trained, full_end_to_end_seconds=built + trained,
                       full_last_epoch_images_per_s=ips)
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    for key, value in rounded.items():
        print(f"{key:40s} {value}")
    print(json.dumps(rounded))
    if args.json:
        args.json.write_text(json.dumps(rounded, indent=2) + "\n")


if __name__ == "__main__":
    main()
