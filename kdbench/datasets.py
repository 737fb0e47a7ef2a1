"""Concrete dataset loaders: digits, synthetic, CIFAR-10 and CIFAR-100, each returning an ImageDataset.

Every loader takes the same keywords — ``root`` (data directory; ignored by the generated/bundled
sets), ``download``, ``val_fraction`` and ``split_seed`` — so the CLI and suite files can treat them
uniformly. ``val_fraction`` of the training split is held out as a stratified validation set with
:func:`kdbench.data.hold_out_validation`; the test split is never touched.

CIFAR download is implemented here (urllib + hashlib + tarfile) rather than via torchvision so that
it can be tested end to end against a local ``file://`` archive, fails with a one-line
:class:`KdbenchError` instead of a traceback, and never leaves a half-written archive behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.data import ImageDataset, batched_crop, channel_stats, hold_out_validation
from kdbench.errors import KdbenchError

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "CIFAR100_MD5",
    "CIFAR100_URL",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "make_synthetic",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

# The digits train/test split is part of the dataset's definition (results must be comparable across
# runs), so its seed is a constant and deliberately not ``split_seed``.
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0


def _check_split_args(name: str, val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise KdbenchError(f"{name}: val_fraction must be in [0, 1), got {val_fraction}")


def _finish(
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
    )


def _resize_uint8(images: Tensor, size: int) -> Tensor:
    """Bilinear resize (no antialias) of uint8 N×C×H×W images, rounded back to uint8."""
    if tuple(images.shape[2:]) == (size, size):
        return images
    x = F.interpolate(
        images.to(torch.float32), size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )
    return x.round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------------------------- digits


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
    if image_size < 1:
        raise KdbenchError(f"digits: image_size must be >= 1, got {image_size}")
    if channels < 1:
        raise KdbenchError(f"digits: channels must be >= 1, got {channels}")
    _check_split_args("digits", val_fraction)
    from sklearn.datasets import load_digits as sk_load_digits  # lazy: sklearn import costs ~1 s

    bunch = sk_load_digits()
    raw = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32))  # N×8×8, values 0..16
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    images = (raw * (255.0 / 16.0)).round_().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    images = _resize_uint8(images, image_size).expand(-1, channels, -1, -1).contiguous()

    train_x, train_y, test_x, test_y = hold_out_validation(
        images, labels, _DIGITS_TEST_FRACTION, _DIGITS_SPLIT_SEED
    )
    mean, std = channel_stats(train_x)
    return _finish(
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


# ------------------------------------------------------------------------------------------ synthetic


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
    if num_classes < 2:
        raise KdbenchError(f"synthetic: num_classes must be >= 2, got {num_classes}")
    if image_size < 4 or channels < 1:
        raise KdbenchError(f"synthetic: need image_size >= 4 and channels >= 1, got {image_size}/{channels}")
    if class_contrast <= 0 or noise < 0:
        raise KdbenchError(f"synthetic: need class_contrast > 0 and noise >= 0, got {class_contrast}/{noise}")
    _check_split_args("synthetic", val_fraction)

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
    return _finish(
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


# -------------------------------------------------------------------------------------------- CIFAR


@dataclass(frozen=True)
class _CifarSpec:
    """Layout facts of one CIFAR release (python-pickle version)."""

    name: str
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple[tuple[str, str], ...]  # (file name, md5 of the official file)
    test_files: tuple[tuple[str, str], ...]
    meta_file: tuple[str, str]
    label_key: bytes
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# Per-file md5s of the official extracted archives, as listed in torchvision/datasets/cifar.py.
_CIFAR10 = _CifarSpec(
    name="cifar10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    url=CIFAR10_URL,
    md5=CIFAR10_MD5,
    train_files=(
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ),
    test_files=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
    meta_file=("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    label_key=b"labels",
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)

_CIFAR100 = _CifarSpec(
    name="cifar100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    url=CIFAR100_URL,
    md5=CIFAR100_MD5,
    train_files=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
    test_files=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
    meta_file=("meta", "7973b15100ade9c7d40fb424638fde48"),
    label_key=b"fine_labels",
    num_classes=100,
    mean=(0.5071, 0.4867, 0.4408),
    std=(0.2675, 0.2565, 0.2761),
)


def _md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, md5: str, dest: Path, name: str) -> None:
    """Stream ``url`` into a temp file next to ``dest``, check its md5, then rename it into place.

    The rename is atomic, so ``dest`` either does not exist or is a complete, verified archive; on any
    failure the temp file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        got = digest.hexdigest()
        if got != md5.lower():
            raise KdbenchError(f"{name}: checksum mismatch for {url}: expected md5 {md5}, got {got}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise KdbenchError(f"{name}: download of {url} failed: {reason}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _extract(archive: Path, spec: _CifarSpec, root: Path) -> None:
    """Extract the archive into a temp dir under ``root`` and move the expected files into place.

    Using a temp dir means an interrupted extraction never leaves a partial ``spec.folder`` that a
    later load would mistake for data; the ``data`` filter (or a manual check on older Pythons)
    rejects absolute paths, ``..`` and links that would write outside the temp dir.
    """
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=root) as tmp_dir:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp_dir, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
                    for member in tar.getmembers():
                        target = Path(tmp_dir, member.name).resolve()
                        if not (member.isfile() or member.isdir()) or not target.is_relative_to(
                            Path(tmp_dir).resolve()
                        ):
                            raise KdbenchError(
                                f"{spec.name}: unsafe archive member {member.name!r} in {archive}"
                            )
                    tar.extractall(tmp_dir)  # members checked above
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise KdbenchError(f"{spec.name}: cannot extract {archive}: {exc}") from exc
        source = Path(tmp_dir, spec.folder)
        target = root / spec.folder
        target.mkdir(parents=True, exist_ok=True)
        for file_name, _ in (*spec.train_files, *spec.test_files, spec.meta_file):
            if (source / file_name).is_file():
                os.replace(source / file_name, target / file_name)
            elif file_name != spec.meta_file[0]:
                raise KdbenchError(f"{spec.name}: archive {archive} has no {spec.folder}/{file_name}")


def _read_batch(path: Path, spec: _CifarSpec) -> tuple[Tensor, Tensor]:
    """Read one CIFAR pickle batch into (uint8 N×3×32×32, int64 N).

    The files are pickles (that is the format); they are only read after a checksum check when they
    come from a download or are the official release.
    """
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8)
        labels = np.asarray(entry[spec.label_key], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise KdbenchError(f"{spec.name}: {path} is not a readable CIFAR batch: {exc!r}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise KdbenchError(
            f"{spec.name}: {path} has data {data.shape} / labels {labels.shape}, expected N×3072 / N"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise KdbenchError(f"{spec.name}: {path} has labels outside 0..{spec.num_classes - 1}")
    # Rows are the R, G, B planes of a 32×32 image, one after the other: exactly C×H×W order.
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def _load_cifar(
    spec: _CifarSpec,
    root: Path | str,
    download: bool,
    url: str,
    md5: str,
    val_fraction: float,
    split_seed: int,
) -> ImageDataset:
    _check_split_args(spec.name, val_fraction)
    root = Path(root).expanduser()
    folder = root / spec.folder
    data_files = [name for name, _ in (*spec.train_files, *spec.test_files)]
    if not all((folder / name).is_file() for name in data_files):
        if not download:
            raise KdbenchError(
                f"{spec.name}: no data under {folder}; pass --download or point --data-root at "
                f"the directory that contains {spec.folder}/"
            )
        created_root = not root.exists()
        archive = root / spec.archive
        try:
            if not (archive.is_file() and _md5_of(archive) == md5.lower()):
                _download(url, md5, archive, spec.name)
            _extract(archive, spec, root)
        except BaseException:
            if created_root and root.is_dir() and not any(root.iterdir()):
                root.rmdir()  # leave no empty directory behind for a failed first download
            raise

    # Per-file checksums are known only for the official release; a custom md5 means a custom archive.
    if md5.lower() == spec.md5:
        for name, file_md5 in (*spec.train_files, *spec.test_files, spec.meta_file):
            path = folder / name
            if name == spec.meta_file[0] and not path.is_file():
                continue
            if _md5_of(path) != file_md5:
                raise KdbenchError(
                    f"{spec.name}: checksum mismatch for {path}; delete {folder} and re-download"
                )

    def read(files: tuple[tuple[str, str], ...]) -> tuple[Tensor, Tensor]:
        parts = [_read_batch(folder / name, spec) for name, _ in files]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    train_x, train_y = read(spec.train_files)
    test_x, test_y = read(spec.test_files)
    return _finish(
        spec.name,
        spec.num_classes,
        train_x,
        train_y,
        test_x,
        test_y,
        mean=spec.mean,
        std=spec.std,
        val_fraction=val_fraction,
        split_seed=split_seed,
    )


def load_cifar10(
    *,
    root: Path | str,
    download: bool = False,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
) -> ImageDataset:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (python-pickle release): 50,000 train / 10,000 test.

    With ``download=True`` and missing files, the archive at ``url`` is fetched, checked against
    ``md5`` and extracted under ``root``. With the official ``md5`` every extracted file is also checked
    against its published md5; a custom ``md5`` (a custom archive, e.g. in tests) skips that check.
    mean/std are the published CIFAR-10 training-set constants.
    """
    return _load_cifar(_CIFAR10, root, download, url, md5, val_fraction, split_seed)


def load_cifar100(
    *,
    root: Path | str,
    download: bool = False,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    url: str = CIFAR100_URL,
    md5: str = CIFAR100_MD5,
) -> ImageDataset:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``: 50,000 train / 10,000 test, 100 classes.

    Download and checksum behaviour as in :func:`load_cifar10`; mean/std are the published CIFAR-100
    training-set constants.
    """
    return _load_cifar(_CIFAR100, root, download, url, md5, val_fraction, split_seed)
