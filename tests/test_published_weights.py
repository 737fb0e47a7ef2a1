"""Teachers by published weights name: read from the torch hub cache under $TORCH_HOME, never downloaded
unless asked, and a missing file is one line saying what to put where."""

from __future__ import annotations

import pytest
import torch
import torchvision

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.plan import expand, load_suite
from kdbench.store import load_checkpoint

SUITE = """
    name: w
    dataset: {name: synthetic, params: {num_train: 8, num_test: 8, num_classes: 10, image_size: 32}}
    pairs: [{teacher: imagenet_resnet18, student: resnet8, weights: IMAGENET1K_V1}]
    methods: [kd]
"""


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def test_weights_by_name_load_from_the_torch_hub_cache(write_suite, registry, torch_home):
    torch.manual_seed(0)
    published = torchvision.models.resnet18(num_classes=1000).state_dict()  # torchvision's own layout
    torch_home.mkdir(parents=True)
    torch.save(published, torch_home / "resnet18-f37072fd.pth")  # the file name of IMAGENET1K_V1
    plan = expand(load_suite(write_suite(SUITE)), registry)
    (teacher,) = {r.teacher.key: r.teacher for r in plan.runs}.values()
    assert teacher.checkpoint == str(torch_home / "resnet18-f37072fd.pth") and teacher.fingerprint
    model = registry.get("model", "imagenet_resnet18").create(num_classes=1000)
    load_checkpoint(model, teacher.checkpoint, "imagenet_resnet18")  # strict
    assert torch.equal(model.state_dict()["fc.weight"], published["fc.weight"])


def test_missing_weights_say_what_to_put_where_and_exit_2(write_suite, tmp_path, torch_home, capsys):
    suite = write_suite(SUITE)
    assert main(["run", str(suite), "--runs", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"put resnet18-f37072fd.pth (published at https://download.pytorch.org/models/resnet18-f37072fd.pth) " \
           f"at {torch_home / 'resnet18-f37072fd.pth'}, or run again with --download" in err
    assert not torch_home.exists()  # nothing was downloaded


def test_unknown_weights_name_the_known_ones(write_suite, registry, torch_home):
    with pytest.raises(KdbenchError, match="resnet18 has no weights 'IMAGENET9K'; known: IMAGENET1K_V1"):
        expand(load_suite(write_suite(SUITE.replace("IMAGENET1K_V1", "IMAGENET9K"))), registry)
    with pytest.raises(KdbenchError, match="model 'resnet20' names no published weights"):
        expand(load_suite(write_suite(SUITE.replace("imagenet_resnet18", "resnet20"))), registry)
