"""Generated image folders for the streaming benchmarks (``test_stream_loading.py``, ``stream_step.py``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import encode_jpeg


def write_folder(root: Path, images: int, classes: int, height: int, width: int) -> None:
    """``root/train/class_NNN/*.jpg``: smooth random images (JPEG-compressible like photographs, unlike
    noise), by default of ImageNet's typical size."""
    gen = torch.Generator().manual_seed(0)
    for i in range(images):
        folder = root / "train" / f"class_{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = torch.rand(3, max(1, height // 25), max(1, width // 25), generator=gen)
        image = torch.nn.functional.interpolate(coarse[None], size=(height, width), mode="bilinear")[0]
        (folder / f"{i:05d}.jpg").write_bytes(encode_jpeg((image * 255).to(torch.uint8), quality=90).numpy().tobytes())


def write_val_split(root: Path) -> None:
    """``root/val``: the first image of each training class (a dataset needs an evaluation split; it is not
    what the benchmarks measure)."""
    for folder in sorted((root / "train").iterdir()):
        (root / "val" / folder.name).mkdir(parents=True, exist_ok=True)
        first = sorted(folder.iterdir())[0]
        (root / "val" / folder.name / first.name).write_bytes(first.read_bytes())
