"""The model zoo against RepDistiller's reference state dicts, plus the zoo's uniform interface.

The reference JSON (``tests/data/repdistiller_state_dicts.json``: parameter counts, 32 px feature shapes
and every state-dict key/shape of RepDistiller's 22 CIFAR models at 100 classes) is the compatibility
contract with published teacher checkpoints; it is test data of this repository.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from kdbench.contracts import classifier_of, feature_shapes
from kdbench.errors import KdbenchError
from tests.zoo import CIFAR_MODELS, IMAGENET_MODELS

CIFAR_NAMES = [
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4",
    "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2", "vgg8", "vgg11", "vgg13", "vgg16",
    "vgg19", "ShuffleV1", "ShuffleV2", "MobileNetV2", "ResNet50",
]  # fmt: skip

REFERENCE_PATH = Path(__file__).resolve().parent / "data" / "repdistiller_state_dicts.json"


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Batch-2 forwards of small nets gain nothing from intra-op threads, and on a shared 2-core box
    OpenMP workers that get descheduled make every op wait a time slice (seconds per model)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@functools.cache
def _reference() -> dict:
    return json.loads(REFERENCE_PATH.read_text())


def test_reference_covers_the_whole_zoo() -> None:
    assert sorted(_reference()) == sorted(CIFAR_NAMES)


def _fresh_model(name: str, **kwargs: int) -> nn.Module:
    torch.manual_seed(0)
    return CIFAR_MODELS[name](**kwargs)


def test_zoo_names() -> None:
    assert sorted(CIFAR_MODELS) == sorted(CIFAR_NAMES)
    assert sorted(IMAGENET_MODELS) == ["imagenet_resnet18", "imagenet_resnet34", "imagenet_resnet50"]


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_matches_reference(name: str) -> None:
    ref = _reference()[name]
    model = _fresh_model(name)

    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert set(shapes) == set(ref["state_dict"])
    assert shapes == ref["state_dict"]

    # feature_shapes is a batch-2, 32 px dry forward with features=True: exactly the reference's setup.
    shapes_32px = feature_shapes(model)
    assert [[2, *shape] for shape in shapes_32px] == ref["feature_shapes_32px"]

    head = classifier_of(model)
    assert isinstance(head, nn.Linear)
    assert (head.in_features, head.out_features) == (shapes_32px[-1][0], 100)


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_reference_shaped_checkpoint_loads_strict(name: str) -> None:
    """Tensors built only from the reference's shapes load strictly: independent of our own state_dict."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in _reference()[name]["state_dict"].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(240, dtype=torch.long)
        else:
            state[key] = torch.randn(shape, generator=generator).abs_()
    model = _fresh_model(name)
    model.load_state_dict(state, strict=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_repdistiller_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    model = _fresh_model(name).eval()
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"model": model.state_dict(), "epoch": 240}, path)

    torch.manual_seed(1)  # a different init, so equality below really comes from the checkpoint
    fresh = CIFAR_MODELS[name]()
    fresh.load_state_dict(torch.load(path, weights_only=True)["model"], strict=True)
    fresh.eval()

    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = fresh(x)  # features=False (the default) returns bare logits
        assert isinstance(logits, torch.Tensor) and logits.shape == (2, 100)
        assert torch.equal(model(x), logits)
        assert fresh(x[:1]).shape == (1, 100)  # a batch of 1 works in eval mode


def test_mismatched_checkpoint_raises(tmp_path: Path) -> None:
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"model": _fresh_model("resnet20").state_dict(), "epoch": 240}, path)
    with pytest.raises(RuntimeError, match="size mismatch"):
        _fresh_model("resnet32x4").load_state_dict(torch.load(path, weights_only=True)["model"], strict=True)


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "vgg8", "ShuffleV1", "ShuffleV2", "MobileNetV2"])
def test_num_classes(name: str) -> None:
    model = _fresh_model(name, num_classes=10).eval()
    with torch.no_grad():
        feats, logits = model(torch.randn(2, 3, 32, 32), features=True)
    assert logits.shape == (2, 10)
    assert classifier_of(model).out_features == 10
    assert len(feats) == len(feature_shapes(model))


def test_feature_shapes_restores_mode() -> None:
    model = _fresh_model("resnet8")
    model.train()
    feature_shapes(model)
    assert model.training
    model.eval()
    feature_shapes(model, image_size=64)
    assert not model.training


def test_classifier_of_without_linear() -> None:
    with pytest.raises(KdbenchError):
        classifier_of(nn.Sequential(nn.Conv2d(3, 4, 3)))


@pytest.mark.parametrize(
    ("name", "torchvision_factory", "width"),
    [
        ("imagenet_resnet18", torchvision.models.resnet18, 512),
        ("imagenet_resnet34", torchvision.models.resnet34, 512),
        ("imagenet_resnet50", torchvision.models.resnet50, 2048),
    ],
)
def test_imagenet_adapters(name: str, torchvision_factory: Callable[..., nn.Module], width: int) -> None:
    model = IMAGENET_MODELS[name](num_classes=10).eval()
    with torch.no_grad():
        feats, logits = model(torch.randn(2, 3, 64, 64), features=True)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert logits.shape == (2, 10)
    assert len(feats) == 6  # stem, layer1..layer4, pooled
    assert feats[-1].shape == (2, width)
    assert feature_shapes(model, image_size=64)[-2] == (width, 2, 2)
    assert classifier_of(model) is model.fc

    # Same keys and shapes as torchvision's own model, so its pretrained weights load strictly.
    reference = torchvision_factory(weights=None, num_classes=10).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in reference.items()}
    model.load_state_dict(reference, strict=True)


@pytest.mark.parametrize("name", CIFAR_NAMES + sorted(IMAGENET_MODELS))
def test_preact_features(name: str) -> None:
    """``forward(x, features=True, preact=True)``: the stage entries before their final activation, same shapes,
    the stem, pooled vector and logits unchanged (docs/methods.md §2). ReLU of them gives the usual features, except
    for WRN (the BN that pre-activates each sum next, RepDistiller's preact) and MobileNetV2 (no ReLU to skip)."""
    torch.manual_seed(0)
    model = (CIFAR_MODELS[name]() if name in CIFAR_MODELS else IMAGENET_MODELS[name](num_classes=10)).eval()
    with torch.no_grad():  # random BN statistics, so that a BN applied in the wrong place shows
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 32 if name in CIFAR_MODELS else 64, 32 if name in CIFAR_MODELS else 64)
    with torch.no_grad():
        feats, logits = model(x, features=True)
        pre, pre_logits = model(x, features=True, preact=True)
        assert torch.equal(model(x, preact=True), logits)  # without features, preact changes nothing
    assert torch.equal(pre_logits, logits)
    assert [p.shape for p in pre] == [f.shape for f in feats]
    assert torch.equal(pre[0], feats[0]) and torch.equal(pre[-1], feats[-1])
    stages = list(zip(pre[1:-1], feats[1:-1], strict=True))
    if name.startswith("wrn"):
        bns = [model.block2.layer[0].bn1, model.block3.layer[0].bn1, model.bn1]
        for (p, f), bn in zip(stages, bns, strict=True):
            torch.testing.assert_close(p, bn(f))
    elif name == "MobileNetV2":
        assert all(torch.equal(p, f) for p, f in stages)
    else:
        for p, f in stages:
            assert torch.equal(torch.relu(p), f) and bool((p < 0).any())


def test_preact_features_leave_running_statistics_alone() -> None:
    """A WRN's pre-activation features apply BNs a second time; in training mode that must not move their statistics."""
    x = torch.randn(4, 3, 32, 32)
    plain, preact = _fresh_model("wrn_16_2").train(), _fresh_model("wrn_16_2").train()
    plain(x, features=True)
    preact(x, features=True, preact=True)
    for (name, a), b in zip(plain.state_dict().items(), preact.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
