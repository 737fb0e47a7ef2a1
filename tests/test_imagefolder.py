"""Image folders on disk (the streaming half of issue 12): the scan against a generated tree of digits PNGs,
transform output shapes, seeded stream batches, and every bad input (one line naming the path, or a file
that cannot be decoded skipped and counted)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torchvision.io import write_png

from kdbench.contracts import StreamRequest
from kdbench.errors import KdbenchError
from kdbench_plugins.datasets._imagefolder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FolderImages,
    FolderStream,
    eval_transform,
    scan_split,
    train_transform,
)


def write_tree(root: Path, per_class: dict[str, int], classes: tuple[int, ...] = (0, 1, 2)) -> Path:
    """``root/<split>/<digit>/<n>.png``: scikit-learn's 8×8 digits, upscaled to 24×24 RGB."""
    digits = load_digits()
    for split, count in per_class.items():
        for c in classes:
            folder = root / split / str(c)
            folder.mkdir(parents=True)
            images = digits.images[digits.target == c][:count]
            for n, image in enumerate(images):
                gray = torch.tensor(image * 255 / 16, dtype=torch.uint8).repeat_interleave(3, 0).repeat_interleave(3, 1)
                write_png(gray.expand(3, 24, 24).contiguous(), str(folder / f"{n}.png"))
    return root


def test_the_scan_finds_classes_and_counts_in_order(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": 4, "val": 2})
    train = scan_split(root, "train")
    assert train.classes == ("0", "1", "2") and len(train) == 12
    assert list(train.labels) == [0] * 4 + [1] * 4 + [2] * 4
    val = scan_split(root, "val", train.classes)
    assert len(val) == 6 and val.paths[0] == root / "val" / "0" / "0.png"


def test_transforms_give_the_asked_size_and_loaders_are_seeded(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": 4})
    split = scan_split(root, "train")
    image, label, index = FolderImages(split, train_transform(16, IMAGENET_MEAN, IMAGENET_STD))[5]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and (label, index) == (1, 5)
    evaluated, _, _ = FolderImages(split, eval_transform(16, IMAGENET_MEAN, IMAGENET_STD))[0]
    assert evaluated.shape == (3, 16, 16)
    # a black pixel normalises to -mean/std: the transform ends in ImageNet's normalisation
    black = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    assert evaluated[:, 0, 0].tolist() == pytest.approx(black, abs=1e-5)
    images = FolderImages(split, eval_transform(16, IMAGENET_MEAN, IMAGENET_STD))
    stream = FolderStream(images, StreamRequest(batch_size=5, shuffle=True, augment=False))
    first = [b.indices.tolist() for b in stream.epoch(3)]
    again = [b.indices.tolist() for b in stream.epoch(3)]
    assert first == again and sorted(sum(first, [])) == list(range(12)) and [len(b) for b in first] == [5, 5, 2]


def test_an_unreadable_image_is_skipped_and_counted(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": 3})
    (root / "train" / "1" / "1.png").write_bytes(b"\x89PNG not really")
    split = scan_split(root, "train")
    stream = FolderStream(FolderImages(split, eval_transform(16, IMAGENET_MEAN, IMAGENET_STD)),
                          StreamRequest(batch_size=4, shuffle=False, augment=False, workers=1))
    batches = list(stream.epoch(0))
    stream.close()
    assert sum(b.skipped for b in batches) == 1 and sum(len(b.labels) for b in batches) == 8
    assert 4 not in torch.cat([b.indices for b in batches]).tolist()  # the bad file's index


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: None, "does not exist"),  # asks for a split that is not there
        (lambda r: [p.unlink() for p in (r / "train" / "2").iterdir()], "train/2 has no images"),
        (lambda r: (r / "train" / "0" / "0.png").write_bytes(b""), "0.png is an empty file"),
        (lambda r: [p.unlink() for p in (r / "train").rglob("*.png")] and
         [d.rmdir() for d in (r / "train").iterdir()], "has no class folders"),
    ],
)
def test_bad_trees_are_one_line_naming_the_path(tmp_path, damage, message):
    root = write_tree(tmp_path / "tree", {"train": 2})
    damage(root)
    split = "test" if message == "does not exist" else "train"
    with pytest.raises(KdbenchError, match=message) as err:
        scan_split(root, split)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


def test_a_validation_class_the_training_split_lacks_is_refused(tmp_path):
    root = write_tree(tmp_path / "tree", {"train": 2})
    write_tree(tmp_path / "tree", {"val": 1}, classes=(0, 7))
    with pytest.raises(KdbenchError, match="val/7 is a class the training split does not have"):
        scan_split(root, "val", scan_split(root, "train").classes)
