"""Batches for training and evaluation: normalisation, batched pad-crop-flip augmentation, iteration.

The data is held on the device as uint8 tensors (``kdbench.contracts.datasets.ImageDataset``), so a
batch is one gather plus one normalisation, with no per-sample Python and no worker processes.

Augmentation parameters are explicit (:class:`AugmentParams`): a distillation method that caches
teacher outputs, or a data-selection method that scores samples, can use
``(dataset index, dx, dy, flip)`` as an exact key for "this sample under this augmentation".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts.datasets import batched_crop
from kdbench.errors import KdbenchError
from kdbench.train.strong_view import StrongAugment


def _stat_tensors(
    mean: Sequence[float], std: Sequence[float], channels: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Mean and std scaled to the 0..255 range, shaped 1×C×1×1 for broadcasting."""
    if len(mean) != channels or len(std) != channels:
        raise KdbenchError(f"mean/std have {len(mean)}/{len(std)} values for images with {channels} channels")
    if any(s <= 0 for s in std):
        raise KdbenchError(f"std must be positive, got {tuple(std)}")
    m = torch.tensor([255.0 * float(v) for v in mean], dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor([255.0 * float(v) for v in std], dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return m, s


def _normalize_with(images_uint8: Tensor, mean255: Tensor, std255: Tensor) -> Tensor:
    # (x/255 - m)/s == (x - 255 m) / (255 s): one fewer full-size pass, identical up to float rounding.
    return images_uint8.to(torch.float32).sub_(mean255).div_(std255)


def normalize(images_uint8: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """float32 ``(x/255 - mean) / std`` per channel, for a batch N×C×H×W, on the images' device.

    The memory format of the input (e.g. channels_last) is preserved.
    """
    if images_uint8.ndim != 4:
        raise ValueError(f"expected N×C×H×W images, got shape {tuple(images_uint8.shape)}")
    m, s = _stat_tensors(mean, std, int(images_uint8.shape[1]), images_uint8.device)
    return _normalize_with(images_uint8, m, s)


@dataclass(frozen=True)
class AugmentParams:
    """Explicit per-sample augmentation parameters.

    With them, (sample, augmentation) is a reproducible cache key: the same image under the same
    ``(dx, dy, flip)`` always gives the same augmented pixels.
    """

    dx: Tensor  # int64 column offset into the padded image, in [0, 2 * padding]
    dy: Tensor  # int64 row offset into the padded image, in [0, 2 * padding]
    flip: Tensor  # bool, horizontal flip after the crop

    def __len__(self) -> int:
        return int(self.dx.shape[0])

    def __getitem__(self, index: slice | Tensor) -> AugmentParams:
        """The parameters of a subset of samples (a slice or an index tensor)."""
        return AugmentParams(dx=self.dx[index], dy=self.dy[index], flip=self.flip[index])

    def to(self, device: torch.device | str) -> AugmentParams:
        return AugmentParams(dx=self.dx.to(device), dy=self.dy.to(device), flip=self.flip.to(device))


class PadCropFlip:
    """RandomCrop(size, padding=4, zero pad) + horizontal flip, batched on the device, no per-sample Python.

    For sample ``i`` the output pixel ``(r, c)`` is ``padded[i, :, dy_i + r, dx_i + c]`` where
    ``padded`` has ``padding`` zero pixels on each side, mirrored left-right if ``flip_i`` — exactly
    torchvision's ``RandomCrop(H, padding=padding)`` followed by ``RandomHorizontalFlip`` for those
    offsets and flips.
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        if padding < 0:
            raise KdbenchError(f"augmentation padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.flip = bool(flip)

    def __repr__(self) -> str:
        return f"PadCropFlip(padding={self.padding}, flip={self.flip})"

    def sample(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> AugmentParams:
        """Draw parameters for ``n`` samples from ``generator`` (on its device), then move them to ``device``.

        Draw order is dx, dy, flip; with ``flip=False`` no flip draws are made.
        """
        gen_device = generator.device if generator is not None else torch.device("cpu")
        hi = 2 * self.padding + 1
        dx = torch.randint(0, hi, (n,), generator=generator, device=gen_device, dtype=torch.int64)
        dy = torch.randint(0, hi, (n,), generator=generator, device=gen_device, dtype=torch.int64)
        if self.flip:
            flip = torch.randint(0, 2, (n,), generator=generator, device=gen_device).bool()
        else:
            flip = torch.zeros(n, dtype=torch.bool, device=gen_device)
        return AugmentParams(dx=dx, dy=dy, flip=flip).to(device)

    def __call__(self, images_uint8: Tensor, params: AugmentParams) -> Tensor:
        """Apply ``params`` to the batch; same shape and dtype (uint8) out."""
        if images_uint8.ndim != 4:
            raise ValueError(f"expected N×C×H×W images, got shape {tuple(images_uint8.shape)}")
        n, _, h, w = images_uint8.shape
        if len(params) != n:
            raise ValueError(f"{len(params)} augmentation parameters for {n} images")
        p = self.padding
        padded = F.pad(images_uint8, (p, p, p, p)) if p else images_uint8
        return batched_crop(padded, params.dy, params.dx, h, w, params.flip if self.flip else None)


def training_augmentation(augment: bool) -> PadCropFlip | None:
    """What every training run draws when its recipe augments: CIFAR's pad-4 random crop and flip.

    One definition for the engine and for the teacher-output cache, whose view grid must be this one."""
    return PadCropFlip(padding=4, flip=True) if augment else None


@dataclass(frozen=True)
class Batch:
    """One training/evaluation batch, ready for a model."""

    images: Tensor  # float32 normalized, N×C×H×W, on the device
    labels: Tensor  # int64
    indices: Tensor  # int64 positions in the split (for CRD-style memory banks and Data Selection)
    # The pad-crop-flip parameters applied to each row (None without augmentation): with ``indices`` an
    # exact key for "this sample under this augmentation", which the tests check pixels against.
    augment: AugmentParams | None
    skipped: int = 0  # files of a streamed batch that could not be decoded and were left out
    # The same rows under the strong view (``kdbench.train.strong_view``), normalised like ``images``; None unless
    # the run's method declares ``needs_strong_view``.
    strong_images: Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def iterate_batches(
    images_uint8: Tensor,
    labels: Tensor,
    *,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    shuffle: bool,
    generator: torch.Generator | None = None,
    augment: PadCropFlip | None = None,
    drop_last: bool = False,
    channels_last: bool = False,
    rank: int = 0,
    world: int = 1,
    strong: StrongAugment | None = None,
    strong_generator: torch.Generator | None = None,
) -> Iterator[Batch]:
    """Yield normalized (and optionally augmented) batches over one epoch of a split.

    Randomness is drawn once, up front, on the CPU: first the permutation (if ``shuffle``), then the
    augmentation parameters for every position of the epoch, both from ``generator``. So an epoch is
    fully determined by the generator's state and does not depend on the device the data lives on.
    ``generator=None`` falls back to torch's global RNG (like ``DataLoader``) and is not reproducible
    unless the caller seeded it. The last partial batch is kept unless ``drop_last``.

    With ``world`` > 1 (DDP), every rank draws the same epoch and keeps rows ``rank, rank + world, ...`` of
    each global batch of ``batch_size``: together the ranks see exactly what one process would.

    With ``strong``, every batch also carries the strong view of its rows (``Batch.strong_images``), its
    parameters drawn up front for every position from ``strong_generator`` alone, so the order and the weak view
    are what they are without it.
    """
    if batch_size < 1:
        raise KdbenchError(f"batch_size must be >= 1, got {batch_size}")
    if images_uint8.ndim != 4:
        raise ValueError(f"expected N×C×H×W images, got shape {tuple(images_uint8.shape)}")
    n = int(images_uint8.shape[0])
    if labels.shape[0] != n:
        raise ValueError(f"{n} images but {labels.shape[0]} labels")
    device = images_uint8.device
    mean255, std255 = _stat_tensors(mean, std, int(images_uint8.shape[1]), device)

    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    params = augment.sample(n, generator, device) if augment is not None else None
    strong_params = strong.sample(n, strong_generator) if strong is not None else None
    order = order.to(device)
    label_order = order.to(labels.device)

    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        rows = slice(start + rank, end, world)
        idx = order[rows]
        batch_params = params[rows] if params is not None else None
        x = images_uint8[idx]
        if augment is not None and batch_params is not None:
            x = augment(x, batch_params)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        strong_x = None
        if strong is not None and strong_params is not None:
            strong_x = strong(images_uint8[idx], strong_params[rows])
            if channels_last:
                strong_x = strong_x.contiguous(memory_format=torch.channels_last)
        yield Batch(
            images=_normalize_with(x, mean255, std255),
            labels=labels[label_order[rows]].to(device),
            indices=idx,
            augment=batch_params,
            strong_images=_normalize_with(strong_x, mean255, std255) if strong_x is not None else None,
        )
