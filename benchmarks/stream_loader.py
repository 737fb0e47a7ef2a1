"""Images/s of the image-folder stream the engine trains from: JPEG decode + RandomResizedCrop(224) + flip +
normalise (each sample's crop seeded by epoch and index), in 1 and 2 DataLoader worker processes, on a
generated ImageNet-shaped folder (no training: the loader alone).

    python benchmarks/stream_loader.py                      # 512 JPEGs of 375×500, batch 64
    python benchmarks/stream_loader.py --images 2048 --workers 1 2 4 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torchvision.io import encode_jpeg

from kdbench.contracts import StreamRequest
from kdbench_plugins.datasets.imagefolder import load_imagefolder


def write_folder(root: Path, images: int, classes: int, height: int, width: int) -> None:
    """Smooth random images (JPEG-compressible like photographs, unlike noise), ImageNet's typical size."""
    gen = torch.Generator().manual_seed(0)
    for i in range(images):
        folder = root / "train" / f"class_{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = torch.rand(3, height // 25, width // 25, generator=gen)
        image = torch.nn.functional.interpolate(coarse[None], size=(height, width), mode="bilinear")[0]
        (folder / f"{i:05d}.jpg").write_bytes(encode_jpeg((image * 255).to(torch.uint8), quality=90).numpy().tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    figures: dict[str, object] = {"images": args.images, "size": "375x500 JPEG → 224", "batch_size": args.batch_size,
                                  "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, args.images, args.classes, 375, 500)
        (root / "val").mkdir()
        for folder in (root / "train").iterdir():  # the dataset needs an evaluation split: one image a class
            (root / "val" / folder.name).mkdir()
            first = sorted(folder.iterdir())[0]
            (root / "val" / folder.name / first.name).write_bytes(first.read_bytes())
        data = load_imagefolder(path=str(root))
        for workers in args.workers:
            stream = data.open("train", StreamRequest(batch_size=args.batch_size, shuffle=True, augment=True,
                                                      workers=workers))
            for _ in stream.epoch(0):  # the first pass starts the workers and warms the page cache
                pass
            start = time.perf_counter()
            seen = sum(len(b.labels) for b in stream.epoch(1))
            figures[f"images_per_s_{workers}_workers"] = round(seen / (time.perf_counter() - start), 1)
            stream.close()
    for key, value in figures.items():
        print(f"{key:28s} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
