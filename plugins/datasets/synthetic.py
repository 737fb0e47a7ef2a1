"""Generated CIFAR-shaped data of any size and class count, for shape tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts import ImageDataset, batched_crop, channel_stats, hookimpl
from kdbench.errors import KdbenchError

from ._common import check_split_args, finish

# Bounds that keep a typo from asking for terabytes: generous for any real use of a generated set.
MAX_CLASSES = 10_000
MAX_IMAGE_SIZE = 1024
MAX_CHANNELS = 64
MAX_BYTES = 16 * 2**30


def make_synthetic(
    *,
    root: Path | str | None = None,
    download: bool = False,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    num_train: int = 512,
    num_test: int = 256,
    num_classes: int = 10,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
    class_contrast: float = 60.0,
    noise: float = 80.0,
) -> ImageDataset:
    """Generated CIFAR-shaped data of any size and class count: learnable, deterministic in ``seed``.

    Real datasets cannot be downloaded everywhere (CI, air-gapped machines), and smoke tests need a
    dataset of arbitrary size and class count that a model can actually learn. Each class has a
    smooth random template: a background shared by all classes plus a class-specific low/mid-frequency
    pattern of amplitude ``class_contrast`` (bilinearly upsampled random grids). A sample is its class
    template under a random shift of up to ``image_size // 8`` pixels, a random contrast/brightness
    change and per-pixel uniform noise in ``[-noise, noise)`` (shared by the channels), stored as
    uint8. With the defaults a nearest-class-mean classifier reaches ~60% on 10 classes (~22% on 100),
    far above chance but below what a shift-invariant CNN can learn. Labels are balanced (counts
    differ by at most one) and shuffled. Generation is vectorised in chunks (about 1 s of CPU time for
    50,000 samples). ``mean``/``std`` are computed on the training split before the validation
    hold-out. ``root``/``download`` are accepted and ignored.
    """
    del root, download
    if num_train < 1 or num_test < 0:
        raise KdbenchError(f"synthetic: need num_train >= 1 and num_test >= 0, got {num_train}/{num_test}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise KdbenchError(f"synthetic: num_classes must be in 2..{MAX_CLASSES}, got {num_classes}")
    if not 4 <= image_size <= MAX_IMAGE_SIZE or not 1 <= channels <= MAX_CHANNELS:
        raise KdbenchError(
            f"synthetic: need image_size in 4..{MAX_IMAGE_SIZE} and channels in 1..{MAX_CHANNELS}, "
            f"got {image_size}/{channels}"
        )
    if (num_train + num_test) * channels * image_size**2 > MAX_BYTES:
        raise KdbenchError(f"synthetic: {num_train + num_test} images of {channels}×{image_size}×{image_size} "
                           f"would take more than {MAX_BYTES // 2**30} GiB")
    if class_contrast <= 0 or noise < 0:
        raise KdbenchError(f"synthetic: need class_contrast > 0 and noise >= 0, got {class_contrast}/{noise}")
    check_split_args("synthetic", val_fraction)

    gen = torch.Generator().manual_seed(int(seed))
    shift = max(1, image_size // 8)
    big = image_size + 2 * shift

    def field(count: int, cells: int) -> Tensor:
        grid = torch.rand(count, channels, cells, cells, generator=gen) - 0.5
        return F.interpolate(grid, size=(big, big), mode="bilinear", align_corners=True)

    # A background shared by all classes plus a weaker class-specific pattern, in 0..255 units: classes
    # differ in structure, not just in mean colour, so the task is not trivially separable.
    background = 128.0 + 120.0 * field(1, 4)
    templates = background + class_contrast * (0.6 * field(num_classes, 4) + 0.4 * field(num_classes, 8))
    # Every shifted copy of every template, so a sample is one row gather instead of a per-pixel crop
    # (5x faster); for very many classes the bank would be too large and the crop is done per chunk.
    offsets = torch.arange(2 * shift + 1)
    tops, lefts = torch.meshgrid(offsets, offsets, indexing="ij")
    num_shifts = tops.numel()
    use_bank = num_classes * num_shifts * channels * image_size * image_size <= 64 * 2**20
    bank = None
    if use_bank:
        reps = templates.repeat_interleave(num_shifts, dim=0)
        bank = batched_crop(
            reps,
            tops.flatten().repeat(num_classes),
            lefts.flatten().repeat(num_classes),
            image_size,
            image_size,
        )

    def make_split(n: int) -> tuple[Tensor, Tensor]:
        labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
        images = torch.empty(n, channels, image_size, image_size, dtype=torch.uint8)
        chunk = 4096
        for start in range(0, n, chunk):
            y = labels[start : start + chunk]
            b = y.shape[0]
            which = torch.randint(0, num_shifts, (b,), generator=gen)
            contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen)
            brightness = 40.0 * torch.rand(b, 1, 1, 1, generator=gen) - 20.0
            if bank is not None:
                x = bank[y * num_shifts + which]
            else:
                x = batched_crop(
                    templates[y], tops.flatten()[which], lefts.flatten()[which], image_size, image_size
                )
            # x*contrast + 128(1-contrast) + brightness, then uniform noise in [-noise, noise) shared by
            # the channels (luminance noise: 1/C of the random numbers); +0.5 so truncation rounds.
            offset = 128.0 * (1.0 - contrast) + brightness - noise + 0.5
            shared = torch.rand(b, 1, image_size, image_size, generator=gen).mul_(2.0 * noise).add_(offset)
            # Few full-size passes: torch ops on 2 cores are memory bound, and copy_ casts to uint8.
            images[start : start + b].copy_(x.mul_(contrast).add_(shared).clamp_(0.0, 255.0))
        return images, labels

    train_x, train_y = make_split(num_train)
    test_x, test_y = make_split(num_test)
    mean, std = channel_stats(train_x)
    return finish(
        "synthetic",
        num_classes,
        train_x,
        train_y,
        test_x,
        test_y,
        mean=mean,
        std=std,
        val_fraction=val_fraction,
        split_seed=split_seed,
    )


@hookimpl
def kdbench_register_datasets(register: Callable[..., None]) -> None:
    register("synthetic", make_synthetic, description="generated CIFAR-shaped data of any size and class count")
