"""ImageNet ResNets: torchvision's own modules, with the zoo's ``forward(x, features=...)`` contract.

Subclassing :class:`torchvision.models.ResNet` (instead of wrapping it) keeps every state-dict key
identical to torchvision's, so torchvision's pretrained weights load with ``strict=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from kdbench.contracts import hookimpl

if TYPE_CHECKING:
    from kdbench_plugins.models._torchvision_resnet import FeatureResNet


def _resnet(block: str, layers: list[int], num_classes: int) -> FeatureResNet:
    from kdbench_plugins.models import _torchvision_resnet as tv

    return tv.FeatureResNet(getattr(tv, block), layers, num_classes=num_classes)


def imagenet_resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18 (torchvision layout, no weights), the usual ImageNet student."""
    return _resnet("BasicBlock", [2, 2, 2, 2], num_classes)


def imagenet_resnet34(num_classes: int = 1000) -> nn.Module:
    """ResNet-34 (torchvision layout, no weights), the usual ImageNet teacher of ResNet-18."""
    return _resnet("BasicBlock", [3, 4, 6, 3], num_classes)


def imagenet_resnet50(num_classes: int = 1000) -> nn.Module:
    """ResNet-50 (torchvision layout, no weights), the ImageNet teacher of MobileNet students."""
    return _resnet("Bottleneck", [3, 4, 6, 3], num_classes)


@hookimpl
def kdbench_register_models(register):
    register("imagenet_resnet18", imagenet_resnet18)
    register("imagenet_resnet34", imagenet_resnet34)
    register("imagenet_resnet50", imagenet_resnet50)
