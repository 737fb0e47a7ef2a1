"""What every built-in dataset loader shares: the split arguments, resizing, and assembling the dataset.

Every loader takes the same keywords — ``root`` (data directory; ignored by the generated/bundled
sets), ``download``, ``val_fraction`` and ``split_seed`` — so the CLI and suite files treat them
uniformly. ``val_fraction`` of the training split is held out as a stratified validation set with
:func:`kdbench.contracts.hold_out_validation`; the test split is never touched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.contracts import ImageDataset, hold_out_validation
from kdbench.errors import KdbenchError

#: The built-in datasets held in memory: what ``kdbench export-folder`` writes as an image folder, and so the
#: names whose missing export folder (``digits_folder``) the image-folder datasets can say how to write.
IN_MEMORY_DATASETS = ("digits", "synthetic", "cifar10", "cifar100")


def check_split_args(name: str, val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise KdbenchError(f"{name}: val_fraction must be in [0, 1), got {val_fraction}")


def finish(
    name: str,
    num_classes: int,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    val_fraction: float,
    split_seed: int,
    superclasses: tuple[int, ...] | None = None,
) -> ImageDataset:
    """Hold the validation split out of train and assemble the ImageDataset."""
    tr_x, tr_y, va_x, va_y = hold_out_validation(train_x, train_y, val_fraction, split_seed)
    return ImageDataset(
        name=name,
        num_classes=num_classes,
        train_images=tr_x,
        train_labels=tr_y,
        val_images=va_x,
        val_labels=va_y,
        test_images=test_x,
        test_labels=test_y,
        mean=mean,
        std=std,
        superclasses=superclasses,
    )


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Bilinear resize (no antialias) of uint8 N×C×H×W images, rounded back to uint8."""
    if tuple(images.shape[2:]) == (size, size):
        return images
    x = F.interpolate(
        images.to(torch.float32), size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )
    return x.round_().clamp_(0, 255).to(torch.uint8)
