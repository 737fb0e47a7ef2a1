"""The model zoo: RepDistiller's 22 CIFAR architectures and three torchvision ImageNet ResNets.

Every model has one forward signature, ``forward(x, features=False)``: logits by default, and
``(feats, logits)`` with ``features=True``, where ``feats = [stem, stage1, ..., stageK, pooled]``.
CIFAR state-dict keys and shapes equal RepDistiller's (checked against
``/work/shared/reference/repdistiller_state_dicts.json`` by the tests), so published teacher
checkpoints (``{'model': state_dict}``) load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kdbench.errors import KdbenchError

from .imagenet import FeatureResNet, imagenet_resnet18, imagenet_resnet34, imagenet_resnet50
from .mobilenetv2 import mobilenetv2
from .resnet import (
    resnet8,
    resnet8x4,
    resnet14,
    resnet20,
    resnet32,
    resnet32x4,
    resnet44,
    resnet56,
    resnet110,
)
from .resnet_bottleneck import resnet50
from .shufflenetv1 import shufflev1
from .shufflenetv2 import shufflev2
from .vgg import vgg8, vgg11, vgg13, vgg16, vgg19
from .wrn import wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2

__all__ = [
    "CIFAR_MODELS",
    "IMAGENET_MODELS",
    "FeatureResNet",
    "classifier_of",
    "feature_shapes",
]

#: RepDistiller's CIFAR names -> ``factory(num_classes=100)``.
CIFAR_MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet8": resnet8,
    "resnet14": resnet14,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "resnet8x4": resnet8x4,
    "resnet32x4": resnet32x4,
    "wrn_16_1": wrn_16_1,
    "wrn_16_2": wrn_16_2,
    "wrn_40_1": wrn_40_1,
    "wrn_40_2": wrn_40_2,
    "vgg8": vgg8,
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "ShuffleV1": shufflev1,
    "ShuffleV2": shufflev2,
    "MobileNetV2": mobilenetv2,
    "ResNet50": resnet50,
}

#: torchvision ResNets (no weights) with the zoo's feature interface -> ``factory(num_classes=1000)``.
IMAGENET_MODELS: dict[str, Callable[..., nn.Module]] = {
    "imagenet_resnet18": imagenet_resnet18,
    "imagenet_resnet34": imagenet_resnet34,
    "imagenet_resnet50": imagenet_resnet50,
}

_HEAD_NAMES = ("fc", "classifier", "linear")


def classifier_of(model: nn.Module) -> nn.Linear:
    """The final linear layer of a zoo model, whatever its attribute is called.

    Methods that read or replace the head (e.g. to get the class-embedding weights) use this instead of
    knowing that ResNets say ``fc``, VGG ``classifier``, ShuffleNets ``linear`` and MobileNetV2
    ``classifier[0]``.
    """
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Sequential):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            if linears:
                return linears[-1]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise KdbenchError(f"{type(model).__name__} has no nn.Linear classifier")
    return linears[-1]


def feature_shapes(model: nn.Module, image_size: int = 32, channels: int = 3) -> list[tuple[int, ...]]:
    """Per-sample shapes (no batch dimension) of ``model(x, features=True)[0]``.

    Found by a dry forward of a batch of 2 in eval mode without gradients, on the model's own device and
    dtype; the model's train/eval mode is restored afterwards, so this is safe mid-training.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(2, channels, image_size, image_size, device=device, dtype=dtype)
            feats, _ = model(x, features=True)
    finally:
        model.train(was_training)
    return [tuple(f.shape[1:]) for f in feats]
