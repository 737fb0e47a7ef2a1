"""Training throughput of a ResNet18 from a streamed image folder, through the engine's own loop: what an
ImageNet epoch costs per image (decode + RandomResizedCrop in loader workers, the step on the device).

    python benchmarks/stream_step.py --device cuda --images 4096 --workers 8     # a GPU, 224 px
    python benchmarks/stream_step.py --device cpu --images 128 --size 64          # a CPU smoke run

Writes one JSON line of figures (and ``--out FILE``): images/s of the training epoch (the second one, so
worker start-up and cuDNN autotuning are out), with the method plain CE or KD from a live ResNet34.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from folders import write_folder

from kdbench.contracts import PairInfo
from kdbench.plan.recipe import Recipe
from kdbench.registry import load_registry
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--method", choices=["ce", "kd"], default="kd")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    registry = load_registry()
    figures: dict[str, object] = {"device": args.device, "images": args.images, "size": args.size,
                                  "batch_size": args.batch_size, "workers": args.workers, "method": args.method}
    if args.device.startswith("cuda"):
        figures["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, args.images, args.classes, 375, 500)
        (root / "val").symlink_to(root / "train")  # the evaluation split is not what is measured
        data = registry.get("dataset", "imagefolder").create({"path": str(root), "image_size": args.size},
                                                             root=None, download=False)
        student = registry.get("model", "imagenet_resnet18").create(num_classes=data.num_classes)
        teacher = registry.get("model", "imagenet_resnet34").create(num_classes=data.num_classes) \
            if args.method == "kd" else None
        method = registry.get("method", args.method).create({"T": 1.0} if args.method == "kd" else {})
        recipe = Recipe(epochs=2, batch_size=args.batch_size, lr=0.1, milestones=(), weight_decay=1e-4,
                        drop_last=True).resolved("imagenet_resnet18")
        method.setup(build_method_context(method, student, teacher, data, PairInfo("imagenet_resnet18", None),
                                          recipe))
        config = EngineConfig(recipe=recipe, seed=0, device=args.device, loader_workers=args.workers,
                              eval_batch_size=args.batch_size)
        outcome = train(student, method, data, config, teacher=teacher)
    figures["images_per_s_epoch_1"] = round(outcome.epochs[0].train_images_per_s, 1)
    figures["images_per_s"] = round(outcome.epochs[1].train_images_per_s, 1)
    line = json.dumps(figures)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
