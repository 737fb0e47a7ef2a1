"""The dataset contract: every split held as tensors, plus the helpers dataset plugins build one with.

Why tensors instead of ``torch.utils.data.Dataset`` + ``DataLoader``: the benchmark's datasets
(CIFAR-10/100, digits, synthetic) fit in memory many times over, and per-sample Python (PIL decode,
per-image transforms, worker processes) dominates the cost of training small CIFAR students. Keeping
every split as one uint8 tensor on the training device and augmenting whole batches with a single
``gather`` (``kdbench.train.batches``) makes an epoch a pure function of (data, seed).

A dataset factory may also carry ``missing_data`` (attached with :func:`checks_data`): a look at the files
its loader needs, reading none of them, so that ``kdbench run --dry-run`` can say before anything trains
what the run would stop with. And :func:`export_folder_name` names the folder ``kdbench export-folder``
writes a dataset to, so that a streamed dataset pointed at a missing export can say how to write it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import torch
from torch import Tensor

from kdbench.errors import KdbenchError

_SPLITS = ("train", "val", "test")

#: A dataset factory's optional ``missing_data``: called with the factory's own keywords (``root``, ``download``
#: and its parameters), it returns the one line the factory would stop with because its data is not on disk, or
#: None when the data is there or will be downloaded. It only looks for files (a dry run calls it on every
#: dataset of a suite); the registry checks it is callable.
MissingData: TypeAlias = Callable[..., str | None]

#: ``kdbench export-folder DATASET`` writes to ``<data root>/DATASET`` + this, unless told another folder.
EXPORT_SUFFIX = "_folder"

_Factory = TypeVar("_Factory", bound=Callable[..., Any])


@dataclass(frozen=True)
class ImageDataset:
    """All splits as tensors; images uint8 N×C×H×W, labels int64 N. Held on one device.

    ``val_*`` is a validation split held out of the training set (it may have 0 rows); ``test_*`` is
    the dataset's official test split. ``mean``/``std`` are per-channel normalisation constants in
    [0, 1] units, i.e. they apply to ``images / 255``.
    """

    name: str
    num_classes: int
    train_images: Tensor
    train_labels: Tensor
    val_images: Tensor
    val_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Optional facts a loader may know: the superclass of every class (CIFAR-100's 20 coarse labels), which
    # label noise of kind "superclass" needs; and, once the harness put label noise in (docs/methods.md §12),
    # which training and validation samples carry a flipped label (bool masks; None: clean labels).
    superclasses: tuple[int, ...] | None = None
    train_flipped: Tensor | None = None
    val_flipped: Tensor | None = None

    def __post_init__(self) -> None:
        # Loaders are the only producers; these checks catch a loader bug at construction time
        # instead of as a shape error deep inside a training loop.
        shape = tuple(self.train_images.shape[1:])
        for split in _SPLITS:
            images, labels = self.split(split)
            if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape:
                raise ValueError(
                    f"{self.name}: {split} images must be uint8 N×{'×'.join(map(str, shape))}, "
                    f"got {images.dtype} {tuple(images.shape)}"
                )
            if labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
                raise ValueError(
                    f"{self.name}: {split} labels must be int64 of length {images.shape[0]}, "
                    f"got {labels.dtype} {tuple(labels.shape)}"
                )
        if len(self.mean) != shape[0] or len(self.std) != shape[0]:
            raise ValueError(
                f"{self.name}: mean/std need {shape[0]} channels, got {len(self.mean)}/{len(self.std)}"
            )

    def to(self, device: torch.device | str) -> ImageDataset:
        """Return a copy with every split on ``device`` (a no-op copy if already there)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **moved)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image, the input shape models are built for."""
        c, h, w = self.train_images.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_train(self) -> int:
        """Number of training samples (after the validation split was held out)."""
        return int(self.train_images.shape[0])

    @property
    def device(self) -> torch.device:
        """The device all splits live on."""
        return self.train_images.device

    def split(self, which: str) -> tuple[Tensor, Tensor]:
        """(images, labels) of ``"train"``, ``"val"`` or ``"test"``."""
        if which not in _SPLITS:
            raise KdbenchError(f"{self.name}: unknown split {which!r}; expected one of {', '.join(_SPLITS)}")
        return getattr(self, f"{which}_images"), getattr(self, f"{which}_labels")


def hold_out_validation(
    images: Tensor, labels: Tensor, fraction: float, seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split ``fraction`` of the samples off as a validation set, stratified per class.

    Returns ``(train_images, train_labels, val_images, val_labels)``; both parts keep the original
    sample order. The total number held out is ``ceil(fraction * N)`` (scikit-learn's convention for
    ``train_test_split``), apportioned to classes by largest remainder so every class contributes in
    proportion to its size; a class never gives up its last training sample. Which samples of a class
    are held out depends only on ``seed``. ``fraction == 0`` gives an empty validation set.
    """
    if not 0.0 <= fraction < 1.0 or math.isnan(fraction):
        raise KdbenchError(f"validation fraction must be in [0, 1), got {fraction}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    n = int(labels.shape[0])
    if fraction == 0.0 or n == 0:
        return images, labels, images[:0], labels[:0]

    cpu_labels = labels.detach().to("cpu", torch.int64)
    classes, counts = torch.unique(cpu_labels, sorted=True, return_counts=True)
    quotas = [fraction * int(c) for c in counts]
    # The epsilon keeps 0.1 * 50000 = 5000.000000000001 from rounding up to 5001.
    total = min(math.ceil(fraction * n - 1e-9), n)
    take = [math.floor(q + 1e-9) for q in quotas]
    capacity = [max(int(c) - 1, 0) for c in counts]
    take = [min(t, cap) for t, cap in zip(take, capacity, strict=True)]
    by_remainder = sorted(range(len(quotas)), key=lambda k: (-(quotas[k] - math.floor(quotas[k] + 1e-9)), k))
    missing = total - sum(take)
    for k in by_remainder:
        if missing <= 0:
            break
        if take[k] < capacity[k]:
            take[k] += 1
            missing -= 1

    generator = torch.Generator().manual_seed(int(seed))
    val_mask = torch.zeros(n, dtype=torch.bool)
    for cls, k in zip(classes.tolist(), take, strict=True):
        members = torch.nonzero(cpu_labels == cls).flatten()
        chosen = members[torch.randperm(members.numel(), generator=generator)[:k]]
        val_mask[chosen] = True
    val_idx = torch.nonzero(val_mask).flatten().to(labels.device)
    train_idx = torch.nonzero(~val_mask).flatten().to(labels.device)
    img_val_idx = val_idx.to(images.device)
    img_train_idx = train_idx.to(images.device)
    return images[img_train_idx], labels[train_idx], images[img_val_idx], labels[val_idx]


def channel_stats(images_uint8: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images, in [0, 1] units.

    Computed from a 256-bin histogram per channel: exact (float64 moments of integer counts), needs no
    float copy of the data, and is ~10x faster on CPU than a float64 reduction over 50,000 images.
    """
    n, c = int(images_uint8.shape[0]), int(images_uint8.shape[1])
    if n == 0:
        raise ValueError("cannot compute channel statistics of an empty image set")
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images_uint8.dtype}")
    values = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for ch in range(c):
        hist = torch.bincount(images_uint8[:, ch].reshape(-1), minlength=256).to("cpu", torch.float64)
        count = hist.sum()
        mean = (hist * values).sum() / count
        var = ((hist * values.square()).sum() / count - mean.square()).clamp_min(0.0)
        means.append(float(mean) / 255.0)
        stds.append(math.sqrt(float(var)) / 255.0)
    return tuple(means), tuple(stds)


def batched_crop(
    images: Tensor, top: Tensor, left: Tensor, height: int, width: int, flip: Tensor | None = None
) -> Tensor:
    """Crop ``height × width`` at per-sample ``(top, left)`` from N×C×H×W ``images`` with one gather.

    If ``flip`` (bool, N) is given, flagged samples are mirrored left-right after cropping. Any dtype
    is preserved. Offsets must keep the crop inside the image (not checked, to avoid a device sync).
    """
    n, c, h, w = images.shape
    device = images.device
    top, left = top.to(device), left.to(device)
    rows = top.view(n, 1) + torch.arange(height, device=device).view(1, height)
    cols = left.view(n, 1) + torch.arange(width, device=device).view(1, width)
    if flip is not None:
        # Mirroring the crop == reading its columns in reverse order.
        cols = torch.where(flip.to(device).view(n, 1), cols.flip(1), cols)
    index = (rows.view(n, height, 1) * w + cols.view(n, 1, width)).view(n, 1, height * width)
    flat = images.reshape(n, c, h * w)
    return flat.gather(2, index.expand(n, c, height * width)).view(n, c, height, width)


def checks_data(check: MissingData) -> Callable[[_Factory], _Factory]:
    """Decorate a dataset factory with its ``missing_data`` check (see :data:`MissingData`)."""

    def attach(factory: _Factory) -> _Factory:
        factory.missing_data = check  # type: ignore[attr-defined]  # a function attribute, as a model's weights
        return factory

    return attach


def export_folder_name(dataset: str) -> str:
    """The folder, under the data root, that ``kdbench export-folder`` writes ``dataset`` to by default."""
    return dataset + EXPORT_SUFFIX


def exported_dataset(folder: Path | str) -> str | None:
    """The dataset a folder is the default export of, by its name (``digits_folder`` → ``digits``), else None."""
    name = Path(folder).name
    return name.removesuffix(EXPORT_SUFFIX) if name.endswith(EXPORT_SUFFIX) and name != EXPORT_SUFFIX else None
