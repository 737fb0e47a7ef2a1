"""Tests for the dataset plugins: digits, synthetic, and CIFAR loading/download against local archives."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from kdbench.contracts import ImageDataset
from kdbench.errors import KdbenchError
from kdbench_plugins.datasets.cifar import load_cifar10, load_cifar100
from kdbench_plugins.datasets.digits import load_digits
from kdbench_plugins.datasets.synthetic import make_synthetic

# ------------------------------------------------------------------------------------------------ digits


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_digits()


def test_digits_shapes_and_fixed_split(digits: ImageDataset) -> None:
    assert digits.name == "digits" and digits.num_classes == 10
    assert digits.image_shape == (3, 32, 32)
    # Stratified 80/20 with ceil(0.2 * 1797) = 360 test samples.
    assert digits.num_train == 1437 and digits.test_images.shape[0] == 360 and digits.val_images.shape[0] == 0
    assert digits.train_images.dtype == torch.uint8 and digits.train_labels.dtype == torch.int64
    assert sorted(digits.test_labels.unique().tolist()) == list(range(10))
    assert all(35 <= c <= 37 for c in digits.test_labels.bincount().tolist())  # stratified
    assert int(digits.train_images.max()) == 255 and int(digits.train_images.min()) == 0
    assert torch.equal(digits.train_images[:, 0], digits.train_images[:, 2])  # replicated grey
    assert len(set(digits.mean)) == 1 and 0.0 < digits.mean[0] < 1.0 and 0.0 < digits.std[0] < 1.0


def test_digits_deterministic_and_split_seed_only_moves_val(digits: ImageDataset) -> None:
    again = load_digits()
    assert torch.equal(again.train_images, digits.train_images) and torch.equal(
        again.test_labels, digits.test_labels
    )
    a = load_digits(val_fraction=0.1, split_seed=0)
    b = load_digits(val_fraction=0.1, split_seed=1)
    assert a.val_images.shape[0] == 144 and a.num_train == 1437 - 144  # ceil(0.1 * 1437)
    assert torch.equal(a.test_images, digits.test_images) and torch.equal(b.test_images, digits.test_images)
    assert not torch.equal(a.val_images, b.val_images)
    assert a.mean == digits.mean  # constants of the dataset, not of the hold-out


def test_digits_native_size_is_exact_rescale() -> None:
    from sklearn.datasets import load_digits as sk_load_digits

    ds = load_digits(image_size=8, channels=1)
    assert ds.image_shape == (1, 8, 8)
    values = set(ds.train_images.unique().tolist())
    assert values <= {round(v * 255 / 16) for v in range(17)}
    assert ds.num_train + ds.test_images.shape[0] == len(sk_load_digits().target)


# --------------------------------------------------------------------------------------------- synthetic


def test_synthetic_sizes_classes_and_determinism() -> None:
    ds = make_synthetic(num_train=300, num_test=120, num_classes=7, image_size=16, channels=2, seed=3,
                        val_fraction=0.2)  # fmt: skip
    assert ds.num_classes == 7 and ds.image_shape == (2, 16, 16)
    assert ds.num_train + ds.val_images.shape[0] == 300 and ds.val_images.shape[0] == 60
    assert ds.test_images.shape[0] == 120 and ds.test_images.dtype == torch.uint8
    counts = torch.cat([ds.train_labels, ds.val_labels]).bincount(minlength=7)
    assert int(counts.max() - counts.min()) <= 1  # balanced
    again = make_synthetic(num_train=300, num_test=120, num_classes=7, image_size=16, channels=2, seed=3,
                           val_fraction=0.2)  # fmt: skip
    assert torch.equal(again.train_images, ds.train_images) and torch.equal(again.test_labels, ds.test_labels)
    other = make_synthetic(num_train=300, num_test=120, num_classes=7, image_size=16, channels=2, seed=4)
    assert not torch.equal(other.test_images, ds.test_images)


def test_synthetic_is_learnable_by_nearest_class_mean() -> None:
    ds = make_synthetic(num_train=1000, num_test=500, num_classes=10, seed=0)
    x = ds.train_images.float().flatten(1)
    means = torch.stack([x[ds.train_labels == k].mean(0) for k in range(10)])
    pred = torch.cdist(ds.test_images.float().flatten(1), means).argmin(1)
    accuracy = (pred == ds.test_labels).float().mean().item()
    assert accuracy > 0.4, accuracy  # chance is 0.1


def test_synthetic_many_classes_uses_per_chunk_crop() -> None:
    # 300 classes x 81 shifts is too many to pre-shift every template; the fallback path must agree
    # in shape, range and determinism.
    a = make_synthetic(num_train=300, num_test=0, num_classes=300, seed=1)
    b = make_synthetic(num_train=300, num_test=0, num_classes=300, seed=1)
    assert a.image_shape == (3, 32, 32) and a.test_images.shape[0] == 0
    assert sorted(a.train_labels.tolist()) == list(range(300))
    assert torch.equal(a.train_images, b.train_images)


def test_synthetic_rejects_bad_parameters() -> None:
    with pytest.raises(KdbenchError, match="num_classes"):
        make_synthetic(num_classes=1)
    with pytest.raises(KdbenchError, match="val_fraction"):
        make_synthetic(val_fraction=1.5)


# ------------------------------------------------------------------------------------------------ CIFAR


@dataclass(frozen=True)
class FakeCifar:
    """A tiny CIFAR release in the official python-pickle layout, and its tar.gz."""

    loader: Callable[..., ImageDataset]
    folder: str
    archive: Path
    md5: str
    train: tuple[np.ndarray, list[int]]
    test: tuple[np.ndarray, list[int]]

    @property
    def url(self) -> str:
        return self.archive.as_uri()


def _write_pickle(path: Path, data: np.ndarray, labels: list[int], label_key: bytes) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake", label_key: labels, b"data": data}, f)


def _make_fake(tmp: Path, kind: str) -> FakeCifar:
    rng = np.random.default_rng(0 if kind == "cifar10" else 1)
    train = (rng.integers(0, 256, (20, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, 20)])
    test = (rng.integers(0, 256, (10, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, 10)])
    src = tmp / f"src-{kind}"
    if kind == "cifar10":
        folder, loader = "cifar-10-batches-py", load_cifar10
        (src / folder).mkdir(parents=True)
        for i in range(5):  # 5 batches of 4 images
            part = slice(4 * i, 4 * i + 4)
            _write_pickle(src / folder / f"data_batch_{i + 1}", train[0][part], train[1][part], b"labels")
        _write_pickle(src / folder / "test_batch", test[0], test[1], b"labels")
        meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
        (src / folder / "batches.meta").write_bytes(pickle.dumps(meta))
    else:
        folder, loader = "cifar-100-python", load_cifar100
        (src / folder).mkdir(parents=True)
        _write_pickle(src / folder / "train", train[0], train[1], b"fine_labels")
        _write_pickle(src / folder / "test", test[0], test[1], b"fine_labels")
        meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)]}
        (src / folder / "meta").write_bytes(pickle.dumps(meta))
    archive = tmp / f"{kind}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / folder, arcname=folder)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return FakeCifar(loader, folder, archive, md5, train, test)


@pytest.fixture(params=["cifar10", "cifar100"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakeCifar:
    return _make_fake(tmp_path, request.param)


def _check_content(ds: ImageDataset, fake: FakeCifar) -> None:
    assert ds.image_shape == (3, 32, 32) and ds.num_train == 20 and ds.test_images.shape[0] == 10
    assert torch.equal(ds.train_images, torch.from_numpy(fake.train[0]).view(20, 3, 32, 32))
    assert ds.train_labels.tolist() == fake.train[1] and ds.test_labels.tolist() == fake.test[1]
    assert torch.equal(
        ds.test_images[3, 1], torch.from_numpy(fake.test[0][3, 1024:2048]).view(32, 32)
    )  # G plane
    if ds.name == "cifar10":
        assert ds.num_classes == 10 and ds.mean == (0.4914, 0.4822, 0.4465)
    else:
        assert ds.num_classes == 100 and ds.std == (0.2675, 0.2565, 0.2761)


def test_cifar_loads_from_extracted_root(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with tarfile.open(fake.archive) as tar:
        tar.extractall(root, filter="data")
    _check_content(fake.loader(root=root, md5=fake.md5), fake)
    ds = fake.loader(root=str(root), md5=fake.md5, val_fraction=0.25, split_seed=0)
    assert ds.num_train + ds.val_images.shape[0] == 20 and ds.val_images.shape[0] == 5


def test_cifar_official_md5_checks_extracted_files(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with tarfile.open(fake.archive) as tar:
        tar.extractall(root, filter="data")
    with pytest.raises(KdbenchError, match="checksum mismatch") as info:
        fake.loader(root=root)  # default md5 = the official release: per-file md5s apply
    assert "\n" not in str(info.value)


def test_cifar_downloads_from_file_url(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "fresh" / "data"
    ds = fake.loader(root=root, download=True, url=fake.url, md5=fake.md5)
    _check_content(ds, fake)
    official_name = (
        "cifar-10-python.tar.gz" if fake.folder == "cifar-10-batches-py" else "cifar-100-python.tar.gz"
    )
    assert (root / official_name).is_file()  # the verified archive is kept, like torchvision does
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []  # no temp leftovers
    assert (root / fake.folder).is_dir()
    # Files present: no second download (a bogus URL would fail if one were attempted).
    again = fake.loader(root=root, download=True, url=(tmp_path / "missing.tar.gz").as_uri(), md5=fake.md5)
    assert torch.equal(again.train_images, ds.train_images)


def test_cifar_wrong_md5_leaves_nothing_behind(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(KdbenchError, match="checksum mismatch") as info:
        fake.loader(root=root, download=True, url=fake.url, md5="0" * 32)
    assert "\n" not in str(info.value) and fake.md5 in str(info.value)
    assert not root.exists() or list(root.iterdir()) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(KdbenchError, match="checksum mismatch"):
        fake.loader(root=existing, download=True, url=fake.url, md5="0" * 32)
    assert list(existing.iterdir()) == []


def test_cifar_missing_root_without_download(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(KdbenchError, match="--download") as info:
        fake.loader(root=root, md5=fake.md5)
    assert str(root / fake.folder) in str(info.value) and "\n" not in str(info.value)
    assert not root.exists()


def test_cifar_failed_download_is_a_kdbench_error(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(KdbenchError, match="download of .* failed"):
        fake.loader(root=root, download=True, url=(tmp_path / "absent.tar.gz").as_uri(), md5=fake.md5)
    assert not root.exists()


def test_cifar_corrupt_batch_is_a_kdbench_error(fake: FakeCifar, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with tarfile.open(fake.archive) as tar:
        tar.extractall(root, filter="data")
    test_file = "test_batch" if fake.folder == "cifar-10-batches-py" else "test"
    (root / fake.folder / test_file).write_bytes(b"not a pickle")
    with pytest.raises(KdbenchError, match="not a readable CIFAR batch"):
        fake.loader(root=root, md5=fake.md5)
