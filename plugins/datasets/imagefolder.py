"""Image folders streamed from disk: ``imagefolder`` (any ``train/<class>/*``, ``val/<class>/*`` tree: Imagenette,
a class subset of ImageNet, your own photographs) and ``imagenet`` (the same with ImageNet's folder name).

Both train with RandomResizedCrop + flip (``imagefolder`` can narrow the crop and leave the flip out) and
evaluate with Resize(size·256/224) + CenterCrop, normalised with ImageNet's mean and std unless given; the
evaluation folder is the test split, as ImageNet's validation set is what its published top-1 numbers are
measured on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from kdbench.contracts import StreamedDataset, checks_data, hookimpl
from kdbench.errors import KdbenchError

from ._common import check_split_args
from ._imagefolder import (
    IMAGENET_CROP_SCALE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainAugment,
    load_folder,
    missing_folder,
    resolve_folder,
)


def _missing_data(name: str, *, root: Path | str | None = None, download: bool = False, path: str = "",
                  eval_folder: str = "val", **_: object) -> str | None:
    """The line a load stops with because the folder or one of its splits is not there; it lists no image."""
    try:
        folder = resolve_folder(name, root, path, download)
    except KdbenchError as exc:
        return str(exc)
    return missing_folder(folder, root, ("train", eval_folder))


@checks_data(partial(_missing_data, "imagefolder"))
def load_imagefolder(
    *,
    root: Path | str | None = None,
    download: bool = False,
    path: str = "",
    image_size: int = 224,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    eval_folder: str = "val",
    val_fraction: float = 0.0,
    split_seed: int = 0,
    crop_scale: tuple[float, float] = IMAGENET_CROP_SCALE,
    flip: bool = True,
) -> StreamedDataset:
    """The image folder at ``path`` (absolute, or under the data root), streamed at ``image_size``; training
    crops keep ``crop_scale`` of each image's area and are flipped unless ``flip`` is false."""
    check_split_args("imagefolder", val_fraction)
    try:
        augment = TrainAugment(crop_scale, flip)
    except KdbenchError as exc:
        raise KdbenchError(f"imagefolder: {exc}") from None
    folder = resolve_folder("imagefolder", root, path, download)
    if (missing := missing_folder(folder, root, ("train", eval_folder))) is not None:
        raise KdbenchError(missing)
    return load_folder("imagefolder", folder, image_size=image_size, mean=mean, std=std, eval_folder=eval_folder,
                       val_fraction=val_fraction, split_seed=split_seed, augment=augment)


@checks_data(partial(_missing_data, "imagenet"))
def load_imagenet(
    *,
    root: Path | str | None = None,
    download: bool = False,
    path: str = "imagenet",
    image_size: int = 224,
    val_fraction: float = 0.0,
    split_seed: int = 0,
) -> StreamedDataset:
    """ILSVRC-2012 as ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (the validation images sorted into
    class folders, as torchvision's reference scripts expect) under ``<data root>/imagenet``."""
    check_split_args("imagenet", val_fraction)
    folder = resolve_folder("imagenet", root, path, download)
    if (missing := missing_folder(folder, root, ("train", "val"))) is not None:
        raise KdbenchError(missing)
    return load_folder("imagenet", folder, image_size=image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                       eval_folder="val", val_fraction=val_fraction, split_seed=split_seed)


@hookimpl
def kdbench_register_datasets(register: Callable[..., None]) -> None:
    register("imagefolder", load_imagefolder,
             description="train/<class>/* and val/<class>/* image files streamed from disk (path=...)")
    register("imagenet", load_imagenet, description="ImageNet-1k folders under <data root>/imagenet, streamed")
