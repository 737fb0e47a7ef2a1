"""CIFAR-10 and CIFAR-100 from the torchvision layout (python pickle batches), with a verified download.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kdbench.contracts import ImageDataset, checks_data, hookimpl, temporary_beside
from kdbench.errors import KdbenchError

from ._common import check_split_args, finish

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"


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
    coarse_key: bytes | None = None  # CIFAR-100's superclass labels


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
    coarse_key=b"coarse_labels",
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
    fd, tmp = temporary_beside(dest, suffix=".part")  # under the user's umask: others may read the archive
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


def _has_data(spec: _CifarSpec, folder: Path) -> bool:
    return all((folder / name).is_file() for name, _ in (*spec.train_files, *spec.test_files))


def _no_data(spec: _CifarSpec, folder: Path) -> str:
    return (f"{spec.name}: no data under {folder}; pass --download or point --data-root at the directory that "
            f"contains {spec.folder}/")


def _missing_data(spec: _CifarSpec, *, root: Path | str, download: bool = False, **_: object) -> str | None:
    """The loader's line for data that is not there and will not be downloaded; it only looks for the files."""
    folder = Path(root).expanduser() / spec.folder
    return None if download or _has_data(spec, folder) else _no_data(spec, folder)


def _read_batch(path: Path, spec: _CifarSpec) -> tuple[Tensor, Tensor, Tensor | None]:
    """Read one CIFAR pickle batch into (uint8 N×3×32×32, int64 N, the superclass labels or None).

    The files are pickles (that is the format); they are only read after a checksum check when they
    come from a download or are the official release.
    """
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8)
        labels = np.asarray(entry[spec.label_key], dtype=np.int64)
        coarse = np.asarray(entry[spec.coarse_key], dtype=np.int64) if spec.coarse_key in entry else None
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise KdbenchError(f"{spec.name}: {path} is not a readable CIFAR batch: {exc!r}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise KdbenchError(
            f"{spec.name}: {path} has data {data.shape} / labels {labels.shape}, expected N×3072 / N"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise KdbenchError(f"{spec.name}: {path} has labels outside 0..{spec.num_classes - 1}")
    # Rows are the R, G, B planes of a 32×32 image, one after the other: exactly C×H×W order.
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels), torch.from_numpy(coarse) if coarse is not None else None


def _load_cifar(
    spec: _CifarSpec,
    root: Path | str,
    download: bool,
    url: str,
    md5: str,
    val_fraction: float,
    split_seed: int,
) -> ImageDataset:
    check_split_args(spec.name, val_fraction)
    root = Path(root).expanduser()
    folder = root / spec.folder
    if not _has_data(spec, folder):
        if not download:
            raise KdbenchError(_no_data(spec, folder))
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

    def read(files: tuple[tuple[str, str], ...]) -> tuple[Tensor, Tensor, Tensor | None]:
        parts = [_read_batch(folder / name, spec) for name, _ in files]
        coarse = [p[2] for p in parts if p[2] is not None]
        return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                torch.cat(coarse) if len(coarse) == len(parts) else None)

    train_x, train_y, train_coarse = read(spec.train_files)
    test_x, test_y, _ = read(spec.test_files)
    return finish(
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
        superclasses=_superclasses(train_y, train_coarse, spec, folder),
    )


def _superclasses(fine: Tensor, coarse: Tensor | None, spec: _CifarSpec, folder: Path) -> tuple[int, ...] | None:
    """Each class's superclass, read off the training files' coarse labels (one per class, or an error)."""
    if coarse is None:
        return None
    table = [-1] * spec.num_classes
    for f, c in set(zip(fine.tolist(), coarse.tolist(), strict=True)):
        if table[f] not in (-1, c):
            raise KdbenchError(f"{spec.name}: {folder} gives class {f} two superclasses ({table[f]} and {c})")
        table[f] = c
    return tuple(table) if -1 not in table else None


@checks_data(partial(_missing_data, _CIFAR10))
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


@checks_data(partial(_missing_data, _CIFAR100))
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


@hookimpl
def kdbench_register_datasets(register: Callable[..., None]) -> None:
    register("cifar10", load_cifar10, description="CIFAR-10 (torchvision layout, checksum-verified download)")
    register("cifar100", load_cifar100, description="CIFAR-100 (torchvision layout, checksum-verified download)")
