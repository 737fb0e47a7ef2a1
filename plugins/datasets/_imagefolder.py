"""Image folders read from disk (``<root>/<split>/<class>/<image>``), streamed batch by batch: the scan, the
per-image transforms of ImageNet-style training and evaluation, and the ``StreamedDataset`` the
``imagefolder`` and ``imagenet`` datasets return (``kdbench.contracts.streams``).

Decoding is torchvision's image I/O in DataLoader worker processes, persistent across epochs, with pinned
memory for GPU runs. Every random crop and flip is drawn from a generator seeded by ``(epoch seed, sample
index)``, so an epoch is the same whatever the number of workers, the DDP rank or a resume. A file that
cannot be decoded is left out of its batch and counted; everything wrong with the tree itself (a missing
folder, an empty class, an empty file) is one line naming the path, before anything trains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from kdbench.contracts import (
    StreamedBatch,
    StreamedDataset,
    StreamRequest,
    export_folder_name,
    exported_dataset,
    hold_out_validation,
)
from kdbench.errors import KdbenchError

from ._common import IN_MEMORY_DATASETS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: A per-image transform: RGB uint8 C×H×W in, float32 normalised out.
Transform = Callable[[Tensor], Tensor]
#: One sample of a ``FolderImages``: ``(image, label, index)``, or ``None`` for a file that cannot be decoded.
Sample = tuple[Tensor, int, int] | None


@dataclass(frozen=True)
class FolderSplit:
    """One split of an image folder: class names (sorted, as torchvision's ImageFolder) and samples."""

    root: Path
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> FolderSplit:
        """The samples at ``indices``, in that order (a validation split held out of training)."""
        return FolderSplit(self.root, self.classes, tuple(self.paths[i] for i in indices),
                           tuple(self.labels[i] for i in indices))


def missing_split(root: str | Path, split: str) -> str | None:
    """The line for a split folder that is not there (None when it is): what a scan stops with first."""
    folder = Path(root).expanduser() / split
    return None if folder.is_dir() else (f"image folder: {folder} does not exist (expected {split}/<class>/<image> "
                                         f"under {root})")


def scan_split(root: str | Path, split: str, classes: Sequence[str] | None = None) -> FolderSplit:
    """The images of ``root/split``, one folder per class. Each problem is one line naming its path: a
    missing folder, a split without class folders, an empty class folder, an empty image file, a class
    that the training split does not have."""
    folder = Path(root).expanduser() / split
    if (missing := missing_split(root, split)) is not None:
        raise KdbenchError(missing)
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


#: ImageNet's RandomResizedCrop area range: a crop keeps 8% to 100% of the image.
IMAGENET_CROP_SCALE = (0.08, 1.0)


@dataclass(frozen=True)
class TrainAugment:
    """What training draws per image: the crop's area range (a fraction of the image) and whether a horizontal
    flip is drawn. ImageNet's (the default) suits photographs; a tiny image of a glyph (digits) wants a larger
    crop and no flip, which is why a folder's suite may set them (they are dataset parameters, so in its keys)."""

    crop_scale: tuple[float, float] = IMAGENET_CROP_SCALE
    flip: bool = True

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise KdbenchError(f"crop_scale must be two fractions 0 < low <= high <= 1, got {list(self.crop_scale)}")


def train_transform(size: int, mean: Sequence[float], std: Sequence[float],
                    augment: TrainAugment = TrainAugment()) -> Transform:
    """RandomResizedCrop(size, scale=crop_scale) + horizontal flip (unless off), then float and per-channel
    normalisation."""
    from torchvision.transforms import v2

    flip = [v2.RandomHorizontalFlip()] if augment.flip else []
    transform: Transform = v2.Compose([v2.RandomResizedCrop(size, scale=augment.crop_scale, antialias=True), *flip,
                                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])
    return transform


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Transform:
    """Resize(size · 256/224) + CenterCrop(size) (ImageNet's 256 → 224), then float and normalisation."""
    from torchvision.transforms import v2

    transform: Transform = v2.Compose([v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size),
                                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])
    return transform


def sample_seed(epoch_seed: int, index: int) -> int:
    """The seed of one sample's crop and flip in one epoch: a function of both and of nothing else."""
    return (epoch_seed * 1_000_003 + index) % (2**63)


class FolderImages(Dataset[Sample]):
    """``(image, label, index)`` per sample, decoded as RGB uint8 and transformed; ``None`` for a file that
    cannot be decoded (``collate_skipping`` drops it and counts it).

    A key is an index, or ``(index, epoch_seed)``: then the transform's random draws come from a generator
    seeded by :func:`sample_seed`, inside ``fork_rng`` so the process's own generator is left alone."""

    def __init__(self, split: FolderSplit, transform: Transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        from torchvision.io import ImageReadMode, decode_image, read_file

        index, epoch_seed = key if isinstance(key, tuple) else (key, None)
        try:
            image = decode_image(read_file(str(self.split.paths[index])), mode=ImageReadMode.RGB)
        except (RuntimeError, ValueError):  # a truncated or foreign file
            return None
        if epoch_seed is None:
            return self.transform(image), self.split.labels[index], index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(epoch_seed, index))
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


class EpochBatches:
    """The batch sampler of a stream: this rank's share of every global batch of one epoch, as
    ``(index, epoch_seed)`` keys. ``seed`` is set before each pass (as ``DistributedSampler.set_epoch``)."""

    def __init__(self, size: int, request: StreamRequest) -> None:
        self.size, self.request, self.seed = size, request, 0

    def __len__(self) -> int:
        b = self.request.batch_size
        return self.size // b if self.request.drop_last else -(-self.size // b)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        r = self.request
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed)) if r.shuffle \
            else torch.arange(self.size)
        for start in range(0, len(self) * r.batch_size, r.batch_size):
            share = order[start:start + r.batch_size][r.rank::r.world].tolist()
            yield [(i, self.seed) for i in share]


class FolderStream:
    """``BatchStream`` over a ``FolderImages``: one DataLoader whose workers live as long as the stream."""

    def __init__(self, images: FolderImages, request: StreamRequest) -> None:
        self.sampler = EpochBatches(len(images), request)
        self.loader: torch.utils.data.DataLoader[Sample] | None = torch.utils.data.DataLoader(
            images, batch_sampler=self.sampler, num_workers=request.workers, pin_memory=request.pin_memory,
            collate_fn=collate_skipping, persistent_workers=request.workers > 0)

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, seed: int) -> Iterator[StreamedBatch]:
        self.sampler.seed = seed
        assert self.loader is not None, "the stream is closed"
        for batch in self.loader:
            yield StreamedBatch(batch.images, batch.labels, batch.indices, batch.skipped)

    def close(self) -> None:
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader = None


class FolderDataset(StreamedDataset):
    """An image folder as a ``StreamedDataset``: ``train/`` for training (less a validation hold-out),
    the evaluation folder (``val/``) as the test split."""

    def __init__(self, name: str, splits: dict[str, FolderSplit], image_size: int, mean: Sequence[float],
                 std: Sequence[float], augment: TrainAugment = TrainAugment()) -> None:
        self.name, self.splits = name, splits
        self.num_classes = len(splits["train"].classes)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.image_shape = (3, image_size, image_size)
        self.train_labels = torch.tensor(splits["train"].labels, dtype=torch.int64)
        self._train = train_transform(image_size, self.mean, self.std, augment)
        self._eval = eval_transform(image_size, self.mean, self.std)

    def size(self, split: str) -> int:
        return len(self.splits[split])

    def open(self, split: str, request: StreamRequest) -> FolderStream:
        if split not in self.splits:
            raise KdbenchError(f"{self.name}: unknown split {split!r}; expected one of {', '.join(self.splits)}")
        transform = self._train if request.augment else self._eval
        return FolderStream(FolderImages(self.splits[split], transform), request)


def load_folder(name: str, folder: Path, *, image_size: int, mean: Sequence[float], std: Sequence[float],
                eval_folder: str, val_fraction: float, split_seed: int,
                augment: TrainAugment = TrainAugment()) -> FolderDataset:
    """Scan ``folder`` and hold ``val_fraction`` of its training images out (stratified, as for CIFAR)."""
    if not 8 <= image_size <= 1024:
        raise KdbenchError(f"{name}: image_size must be in 8..1024, got {image_size}")
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise KdbenchError(f"{name}: mean and std need 3 values each (std > 0), got {tuple(mean)} / {tuple(std)}")
    scanned = scan_split(folder, "train")
    test = scan_split(folder, eval_folder, scanned.classes)
    labels = torch.tensor(scanned.labels, dtype=torch.int64)
    positions = torch.arange(len(scanned))
    train_at, _, val_at, _ = hold_out_validation(positions, labels, val_fraction, split_seed)
    splits = {"train": scanned.subset(train_at.tolist()), "val": scanned.subset(val_at.tolist()), "test": test}
    return FolderDataset(name, splits, image_size, mean, std, augment)


def missing_folder(folder: Path, root: Path | str | None, splits: Sequence[str]) -> str | None:
    """The line a load of ``folder`` stops with when one of its split folders is not there, None when they all are;
    it looks at the folders only, so it is cheap on an ImageNet-sized tree. A missing folder that is named as
    ``kdbench export-folder`` names its exports (``digits_folder``) of a built-in dataset held in memory gets the
    command that writes it."""
    problem = next((p for split in splits if (p := missing_split(folder, split)) is not None), None)
    source = exported_dataset(folder)
    if problem is None or folder.exists() or source not in IN_MEMORY_DATASETS:
        return problem
    default = root is not None and folder == Path(root) / export_folder_name(source)
    command = " ".join(["kdbench export-folder", source, *([] if default else [str(folder)]),
                        *(["--data-root", str(root)] if root is not None else [])])
    return f"{problem}; `{command}` writes it"


def resolve_folder(name: str, root: Path | str | None, path: str, download: bool) -> Path:
    """``path`` as given when absolute, else under the data root; image folders are never downloaded."""
    if download:
        raise KdbenchError(f"{name}: image folders cannot be downloaded; put train/<class>/* and val/<class>/* "
                           f"under {Path(root or '.') / path}")
    if not path:
        raise KdbenchError(f"{name}: say which folder with the parameter path (absolute, or under --data-root)")
    given = Path(path).expanduser()
    return given if given.is_absolute() else Path(root or ".") / given
