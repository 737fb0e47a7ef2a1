"""Image folders read from disk (``<root>/<split>/<class>/<image>``): the scan, the per-image transforms of
ImageNet-style training and evaluation, and batches that skip an unreadable file and count it.

This is the streaming half of the ``imagefolder`` / ``imagenet`` datasets of issue 12: a
``torch.utils.data.Dataset`` that decodes with torchvision's image I/O in DataLoader worker processes.
It is not registered as a dataset yet, because the engine still trains only from ``ImageDataset``
tensors held on the device (docs/methods.md §1, "ImageNet support is partial").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from kdbench.errors import KdbenchError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FolderSplit:
    """One split of an image folder: class names (sorted, as torchvision's ImageFolder) and samples."""

    root: Path
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)


def scan_split(root: str | Path, split: str, classes: Sequence[str] | None = None) -> FolderSplit:
    """The images of ``root/split``, one folder per class. Each problem is one line naming its path: a
    missing folder, a split without class folders, an empty class folder, an empty image file, a class
    that the training split does not have."""
    folder = Path(root).expanduser() / split
    if not folder.is_dir():
        raise KdbenchError(f"image folder: {folder} does not exist (expected {split}/<class>/<image> under {root})")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not found:
        raise KdbenchError(f"image folder: {folder} has no class folders")
    if classes is not None and (extra := sorted(set(found) - set(classes))):
        raise KdbenchError(f"image folder: {folder / extra[0]} is a class the training split does not have")
    names = tuple(classes) if classes is not None else tuple(found)
    paths, labels = [], []
    for label, name in enumerate(names):
        images = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if (folder / name).is_dir() else []
        if not images and name in found:
            raise KdbenchError(f"image folder: {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in images:
            if path.stat().st_size == 0:
                raise KdbenchError(f"image folder: {path} is an empty file")
        paths += images
        labels += [label] * len(images)
    return FolderSplit(folder, names, tuple(paths), tuple(labels))


def train_transform(size: int, mean: Sequence[float], std: Sequence[float]):
    """RandomResizedCrop(size) + horizontal flip, then float and per-channel normalisation."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]):
    """Resize(size · 256/224) + CenterCrop(size) (ImageNet's 256 → 224), then float and normalisation."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


class FolderImages(Dataset):
    """``(image, label, index)`` per sample, decoded as RGB uint8 and transformed; ``None`` for a file that
    cannot be decoded (``collate_skipping`` drops it and counts it)."""

    def __init__(self, split: FolderSplit, transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int] | None:
        from torchvision.io import ImageReadMode, decode_image, read_file

        try:
            image = decode_image(read_file(str(self.split.paths[index])), mode=ImageReadMode.RGB)
        except (RuntimeError, ValueError):  # a truncated or foreign file
            return None
        return self.transform(image), self.split.labels[index], index


@dataclass(frozen=True)
class FolderBatch:
    images: Tensor  # float32 normalised, N×3×size×size
    labels: Tensor  # int64
    indices: Tensor  # int64 positions in the split
    skipped: int  # unreadable files dropped from this batch


def collate_skipping(samples: list[tuple[Tensor, int, int] | None]) -> FolderBatch:
    """Stack the readable samples of a batch; the unreadable ones are counted, not fatal."""
    good = [s for s in samples if s is not None]
    skipped = len(samples) - len(good)
    if not good:
        return FolderBatch(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long),
                           skipped)
    return FolderBatch(torch.stack([s[0] for s in good]), torch.tensor([s[1] for s in good]),
                       torch.tensor([s[2] for s in good]), skipped)


def loader(images: FolderImages, batch_size: int, *, shuffle: bool, workers: int, seed: int = 0,
           pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Batches from worker processes (persistent when there are any); the shuffle is seeded."""
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                       num_workers=workers, pin_memory=pin_memory, collate_fn=collate_skipping,
                                       persistent_workers=workers > 0)
