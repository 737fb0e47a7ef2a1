"""Teacher checkpoints (RepDistiller format) and the content-addressed teacher store."""

from __future__ import annotations

import pytest
import torch

from kdbench.contracts import TrainingRecipe
from kdbench.errors import KdbenchError
from kdbench.plan import DatasetRef, TeacherSpec
from kdbench.run import RunOptions, Worker
from kdbench.store import TeacherStore, load_checkpoint
from tests.zoo import CIFAR_MODELS


def test_repdistiller_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    src = CIFAR_MODELS["resnet8"](num_classes=100).eval()
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"model": src.state_dict(), "epoch": 240, "accuracy": 0.0}, path)
    dst = CIFAR_MODELS["resnet8"](num_classes=100).eval()
    load_checkpoint(dst, path, "resnet8")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(src(x), dst(x))


def test_dataparallel_prefix_and_bare_state_dicts_load(tmp_path):
    src = CIFAR_MODELS["resnet8"](num_classes=10)
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, tmp_path / "dp.pth")
    torch.save(src.state_dict(), tmp_path / "bare.pth")
    for name in ("dp.pth", "bare.pth"):
        load_checkpoint(CIFAR_MODELS["resnet8"](num_classes=10), tmp_path / name, "resnet8")


def test_checkpoint_that_does_not_fit_is_one_line(tmp_path):
    torch.save({"model": CIFAR_MODELS["resnet8"](num_classes=100).state_dict()}, tmp_path / "r8.pth")
    with pytest.raises(KdbenchError) as err:
        load_checkpoint(CIFAR_MODELS["resnet14"](num_classes=100), tmp_path / "r8.pth", "resnet14")
    assert "does not fit resnet14" in str(err.value) and "missing keys" in str(err.value)
    with pytest.raises(KdbenchError, match="shape mismatches"):
        load_checkpoint(CIFAR_MODELS["resnet8"](num_classes=10), tmp_path / "r8.pth", "resnet8")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(KdbenchError, match="cannot be read"):
        load_checkpoint(CIFAR_MODELS["resnet8"](num_classes=10), tmp_path / "junk.pth", "resnet8")
    assert "\n" not in str(err.value)


def tiny_teacher_spec(epochs=1):
    dataset = DatasetRef("synthetic", {"num_train": 64, "num_test": 32, "num_classes": 4, "image_size": 8})
    recipe = TrainingRecipe(epochs=epochs, batch_size=32, lr=0.05, milestones=(), lr_decay=0.1, momentum=0.9,
                            weight_decay=5e-4, nesterov=False, augment=True, drop_last=False)
    return TeacherSpec("resnet8", "1", dataset, recipe, seed=0)


def test_teacher_is_trained_once_and_reused(isolated_home, tmp_path, monkeypatch):
    options = RunOptions(runs_root=str(tmp_path / "runs"), device="cpu", quiet=True)
    spec = tiny_teacher_spec()
    loaded = Worker(options).teachers.get(spec)
    model, record = loaded.model, loaded.record
    saved = TeacherStore(isolated_home).model_path(spec)
    assert saved.is_file() and record.key == spec.key
    assert 0 <= record.test_top1 <= 100
    mtime = saved.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the stored teacher should have been reused")

    monkeypatch.setattr("kdbench.run.teachers.train", no_training)
    loaded = Worker(options).teachers.get(spec)
    again, record2 = loaded.model, loaded.record
    assert saved.stat().st_mtime_ns == mtime and record2.test_top1 == record.test_top1
    # the same weights; compared in one memory format (training left ``model`` in channels_last, as the engine
    # places every network, and NHWC kernels round differently from NCHW ones)
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    again.to(memory_format=torch.channels_last)
    assert torch.equal(model.eval()(x), again.eval()(x))
    assert [r.key for r in TeacherStore(isolated_home).list()] == [spec.key]


def test_different_recipe_is_a_different_teacher():
    assert tiny_teacher_spec(1).key != tiny_teacher_spec(2).key
