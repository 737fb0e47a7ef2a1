"""scikit-learn's bundled 8×8 handwritten digits: the embedded default dataset (real data, no download)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from kdbench.contracts import ImageDataset, channel_stats, hold_out_validation, hookimpl
from kdbench.errors import KdbenchError

from ._common import check_split_args, finish, resize_uint8

# The digits train/test split is part of the dataset's definition (results must be comparable across
# runs), so its seed is a constant and deliberately not ``split_seed``.
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0


def load_digits(
    *,
    root: Path | str | None = None,
    download: bool = False,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    image_size: int = 32,
    channels: int = 3,
) -> ImageDataset:
    """scikit-learn's bundled 8×8 handwritten digits (1797 real images, 10 classes, no download).

    Pixel values 0..16 are scaled to 0..255, replicated to ``channels`` and bilinearly resized to
    ``image_size`` so that every CIFAR model runs unchanged at the default 32. The train/test split is
    a fixed, stratified 80/20 split (1437/360, independent of ``split_seed``); ``val_fraction`` is then
    held out of train. ``mean``/``std`` are computed on that 80% training split *before* the validation
    hold-out, so they are constants of the dataset (as the published CIFAR constants are) and do not
    move with ``val_fraction``/``split_seed``. ``root``/``download`` are accepted and ignored.
    """
    del root, download
    if not 1 <= image_size <= 1024:
        raise KdbenchError(f"digits: image_size must be in 1..1024, got {image_size}")
    if not 1 <= channels <= 64:
        raise KdbenchError(f"digits: channels must be in 1..64, got {channels}")
    check_split_args("digits", val_fraction)
    from sklearn.datasets import load_digits as sk_load_digits  # lazy: sklearn import costs ~1 s

    bunch = sk_load_digits()
    raw = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32))  # N×8×8, values 0..16
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    images = (raw * (255.0 / 16.0)).round_().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    images = resize_uint8(images, image_size).expand(-1, channels, -1, -1).contiguous()

    train_x, train_y, test_x, test_y = hold_out_validation(
        images, labels, _DIGITS_TEST_FRACTION, _DIGITS_SPLIT_SEED
    )
    mean, std = channel_stats(train_x)
    return finish(
        "digits",
        10,
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
    register("digits", load_digits, description="scikit-learn's bundled 8×8 handwritten digits (no download)")
