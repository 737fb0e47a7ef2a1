"""Datasets streamed from disk (``imagefolder``, ``imagenet``): the registered dataset against a generated tree,
epochs that do not depend on loader workers or DDP ranks, the engine's one loop over streamed batches, an
unreadable file counted in the record, one-line errors, and the Table VII twin through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from kdbench.cli import main
from kdbench.contracts import StreamedDataset, StreamRequest
from kdbench.errors import KdbenchError
from kdbench.registry import load_registry
from tests.test_imagefolder import write_tree

ROOT = Path(__file__).resolve().parent.parent


def dataset(name: str = "imagefolder", **params) -> StreamedDataset:
    return load_registry().get("dataset", name).create(params, root=params.pop("root", None), download=False)


def indices(stream, seed: int) -> list[list[int]]:
    return [b.indices.tolist() for b in stream.epoch(seed)]


def test_the_registered_folder_dataset_has_the_trees_classes_splits_and_shapes(tmp_path):
    write_tree(tmp_path / "tree", {"train": 10, "val": 3})
    data = dataset(root=tmp_path, path="tree", image_size=16, val_fraction=0.2)
    assert isinstance(data, StreamedDataset) and data.name == "imagefolder"
    assert (data.num_classes, data.image_shape) == (3, (3, 16, 16))
    assert (data.num_train, data.size("val"), data.size("test")) == (24, 6, 9)  # 20% of 30 held out, stratified
    assert data.train_labels.bincount().tolist() == [8, 8, 8]
    stream = data.open("train", StreamRequest(batch_size=8, shuffle=True, augment=True))
    batch = next(stream.epoch(0))
    assert batch.images.shape == (8, 3, 16, 16) and batch.images.dtype == torch.float32
    stream.close()
    absolute = dataset(path=str(tmp_path / "tree"), image_size=16)  # an absolute path ignores the data root
    assert absolute.num_train == 30


def test_an_epoch_depends_on_its_seed_only_not_on_workers_or_ranks(tmp_path):
    write_tree(tmp_path / "tree", {"train": 7, "val": 1})
    data = dataset(root=tmp_path, path="tree", image_size=16)
    request = StreamRequest(batch_size=6, shuffle=True, augment=True)
    alone, workers = data.open("train", request), data.open("train", StreamRequest(6, True, True, workers=2))
    first = list(alone.epoch(5))
    again = list(workers.epoch(5))
    assert [b.indices.tolist() for b in first] == [b.indices.tolist() for b in again]
    assert all(torch.equal(a.images, b.images) for a, b in zip(first, again, strict=True))  # same crops and flips
    assert indices(alone, 6) != indices(alone, 5)  # another epoch, another order
    ranks = [data.open("train", StreamRequest(6, True, True, rank=r, world=2)) for r in (0, 1)]
    for whole, r0, r1 in zip(first, *[list(s.epoch(5)) for s in ranks], strict=True):
        assert sorted(r0.indices.tolist() + r1.indices.tolist()) == sorted(whole.indices.tolist())
        assert torch.equal(r0.images, whole.images[0::2]) and torch.equal(r1.images, whole.images[1::2])
    for stream in (alone, workers, *ranks):
        stream.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "nowhere"}, "nowhere/train does not exist"),
        ({}, "say which folder with the parameter path"),
        ({"path": "tree", "image_size": 4}, "image_size must be in 8..1024"),
        ({"path": "tree", "eval_folder": "test"}, "tree/test does not exist"),
        ({"path": "tree", "crop_scale": (0.6, 0.5)}, r"^imagefolder: crop_scale must be two fractions 0 < low <= hi"),
        ({"path": "tree", "crop_scale": [0.5]}, r"crop_scale"),
        ({"path": "tree", "crop_scale": (0.0, 1.0)}, r"crop_scale must be two fractions"),
    ],
)
def test_bad_folders_and_parameters_are_one_line(tmp_path, params, message):
    write_tree(tmp_path / "tree", {"train": 2, "val": 1})
    with pytest.raises(KdbenchError, match=message) as err:
        dataset(root=tmp_path, **params)
    assert "\n" not in str(err.value)


def test_a_folder_can_crop_less_and_not_flip(tmp_path):
    """crop_scale (1, 1) keeps the whole image (torchvision falls back to the full frame when no crop of that area
    fits another aspect ratio), so without flips every training view is the evaluation-free resize of the image
    itself; with the default flip some seed mirrors it. Worked out on an image whose left half is bright."""
    from plugins.datasets._imagefolder import TrainAugment, train_transform

    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    image[:, :, :8] = 255
    plain = image.float() / 255
    views = {}
    for flip in (False, True):
        transform = train_transform(16, (0.0,) * 3, (1.0,) * 3, TrainAugment((1.0, 1.0), flip))
        seen = []
        for seed in range(12):
            torch.manual_seed(seed)
            seen.append(transform(image))
        views[flip] = seen
    assert all(torch.equal(v, plain) for v in views[False])
    assert any(torch.equal(v, plain.flip(-1)) for v in views[True]) and any(torch.equal(v, plain) for v in views[True])
    write_tree(tmp_path / "tree", {"train": 2, "val": 1})
    data = dataset(root=tmp_path, path="tree", image_size=16, crop_scale=[0.5, 1.0], flip=False)
    assert data.num_train == 6  # a YAML list is accepted as the pair


def write_suite(tmp_path: Path, methods: list, **dataset_params) -> Path:
    suite = {
        "name": "stream",
        "dataset": {"name": "imagefolder", "params": {"path": "tree", "image_size": 16, **dataset_params}},
        "recipe": {"epochs": 2, "batch_size": 8, "lr": 0.02, "milestones": []},
        "teacher_recipe": {"epochs": 1, "milestones": []},
        "seeds": [0],
        "pairs": [{"teacher": "resnet8", "student": "resnet8"}],
        "methods": methods,
    }
    path = tmp_path / "stream.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def cli(tmp_path: Path, suite: Path, *args: str) -> int:
    return main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none"),
                 "--data-root", str(tmp_path), "--threads", "2", "--loader-workers", "0", *args])


def records(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "runs" / "raw" / "stream").glob("*/record.json"))]


def test_a_streamed_run_trains_through_the_engine_and_counts_an_unreadable_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "tree", {"train": 6, "val": 2})
    (tmp_path / "tree" / "train" / "1" / "2.png").write_bytes(b"\x89PNG truncated")  # decodes to nothing
    assert cli(tmp_path, write_suite(tmp_path, ["kd"])) == 0
    (record,) = records(tmp_path)
    assert [m["unreadable"] for m in record["metrics"]] == [1, 1]  # skipped in every epoch, and counted
    assert all(0 <= m["test_top5"] <= 100 for m in record["metrics"])
    assert record["teacher_cache"]["used"] is False and "streamed" in record["teacher_cache"]["reason"]


def test_data_selection_scores_a_stream_like_data_held_in_memory(tmp_path, monkeypatch, capsys):
    """Data Selection by influence on a streamed folder: the teacher scores every training image through the
    evaluation transform, 75% go to the teacher. Scores are cached per teacher; a new estimator that meets an
    undecodable file stops with one line, since every sample needs a score."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    write_tree(tmp_path / "tree", {"train": 4, "val": 2})
    suite = write_suite(tmp_path, [{"name": "kd", "selection": {"estimator": "influence", "fraction": 0.75}}])
    assert cli(tmp_path, suite) == 0
    (record,) = records(tmp_path)
    assert record["selection"]["teacher_samples"] == 9 and record["selection"]["samples"] == 12
    (tmp_path / "tree" / "train" / "2" / "0.png").write_bytes(b"\x89PNG broken")
    assert cli(tmp_path, suite, "--force") == 0  # the scores are cached by the teacher: no rescoring
    other = write_suite(tmp_path, [{"name": "kd", "selection": {"estimator": "el2n", "fraction": 0.75}}])
    assert cli(tmp_path, other) == 2
    assert "could not be decoded; every sample needs a score" in capsys.readouterr().err


def test_export_folder_writes_a_dataset_as_class_folders_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "synthetic_png"
    args = ["export-folder", "synthetic", str(out), "--param", "num_train=40", "--param", "num_test=20",
            "--param", "num_classes=4", "--param", "image_size=8"]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0", "1", "2", "3"]
    assert len(list((out / "train").rglob("*.png"))) == 40 and len(list((out / "val").rglob("*.png"))) == 20
    assert main(args) == 2 and "already exists" in capsys.readouterr().err


def test_the_table_vii_twin_runs_streamed_through_the_cli(tmp_path, monkeypatch):
    """suites/digits_imagenet.yaml at reduced size: its eleven method entries (CTKD+LR, DIST, NKD among them) on the
    first pair, on a generated folder of 12-pixel images, one epoch each; the Table VII layout with top-5."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    assert main(["export-folder", "synthetic", str(tmp_path / "digits_folder"), "--param", "num_train=64",
                 "--param", "num_test=32", "--param", "image_size=12"]) == 0
    suite = yaml.safe_load((ROOT / "suites" / "digits_imagenet.yaml").read_text())
    suite["dataset"]["params"]["image_size"] = 16
    suite["recipe"].update(epochs=1, milestones=[], lr=0.01)
    suite["teacher_recipe"] = {"epochs": 1, "milestones": []}
    suite["pairs"] = suite["pairs"][:1]
    path = tmp_path / "digits_imagenet.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    assert main(["run", str(path), "--quiet", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none"),
                 "--data-root", str(tmp_path), "--threads", "2", "--loader-workers", "0"]) == 0
    table = (tmp_path / "runs" / "digits_imagenet" / "table.md").read_text()
    for row in ("Teacher", "Student (scratch)", "Vanilla KD", "LR", "CTKD", "VID", "SRRL", "SemCKD", "SRRL+LR",
                "CTKD+LR", "DIST", "NKD", "Top-5"):
        assert f"| {row} " in table or row in table, row
    ctkd_lr = [r for r in (json.loads(p.read_text()) for p in (tmp_path / "runs" / "raw" / "digits_imagenet").glob(
        "*/record.json")) if r["label"] == "CTKD+LR"]
    assert len(ctkd_lr) == 1 and ctkd_lr[0]["spec"]["revision"] is not None
