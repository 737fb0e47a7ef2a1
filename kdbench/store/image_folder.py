"""Write a dataset held in memory as an image folder (``train/<class>/*.png``, ``val/<class>/*.png``).

The ImageNet path of kdbench streams image folders from disk; writing a small dataset (digits, CIFAR)
in that layout gives the same code path a dataset that fits on a laptop: the CPU twin of Table VII, and a
way to check that a folder and its in-memory original train alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from kdbench.contracts import ImageDataset
from kdbench.errors import KdbenchError


@dataclass(frozen=True)
class WrittenFolder:
    root: Path
    classes: int
    train_images: int
    val_images: int


def write_image_folder(data: ImageDataset, out: Path) -> WrittenFolder:
    """``train/`` gets the training split (and the validation hold-out, if any), ``val/`` the test split.

    Class folders are named by zero-padded label so that their sorted order is the label order. The folder
    must not exist yet: nothing is overwritten."""
    from torchvision.io import write_png

    if out.exists():
        raise KdbenchError(f"{out} already exists; give a new folder (nothing is overwritten)")
    width = len(str(data.num_classes - 1))
    splits = {
        "train": (torch.cat([data.train_images, data.val_images]), torch.cat([data.train_labels, data.val_labels])),
        "val": (data.test_images, data.test_labels),
    }
    partial = out.with_name(out.name + ".partial")
    counts = {}
    for split, (images, labels) in splits.items():
        images, labels = images.cpu(), labels.cpu()
        for c in range(data.num_classes):
            (partial / split / f"{c:0{width}d}").mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
            rgb = image if image.shape[0] == 3 else image[:1].expand(3, -1, -1)
            write_png(rgb.contiguous(), str(partial / split / f"{label:0{width}d}" / f"{i:05d}.png"))
        counts[split] = int(images.shape[0])
    partial.rename(out)  # the folder appears whole or not at all
    return WrittenFolder(out, data.num_classes, counts["train"], counts["val"])
