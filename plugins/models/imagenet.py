"""ImageNet ResNets: torchvision's own modules, with the zoo's ``forward(x, features=...)`` contract.

Subclassing :class:`torchvision.models.ResNet` (instead of wrapping it) keeps every state-dict key
identical to torchvision's, so torchvision's pretrained weights load with ``strict=True``. Each factory
names its published weights (``published_weights(name) -> url``, the model contract's convention), so a
suite can ask for ``teacher: imagenet_resnet34, weights: IMAGENET1K_V1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

from kdbench.contracts import hookimpl

if TYPE_CHECKING:
    from ._torchvision_resnet import FeatureResNet


def _resnet(block: str, layers: list[int], num_classes: int) -> FeatureResNet:
    from . import _torchvision_resnet as tv

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


def _torchvision_weights(arch: str) -> Callable[[str], str]:
    def url(name: str) -> str:
        """The download URL of torchvision's ``arch`` weights ``name``; KeyError for an unknown name."""
        from torchvision.models import get_model_weights

        weights = get_model_weights(arch)
        if name not in weights.__members__:
            raise KeyError(f"{arch} has no weights {name!r}; known: {', '.join(weights.__members__)}")
        address: str = weights[name].url
        return address

    return url


for _factory, _arch in ((imagenet_resnet18, "resnet18"), (imagenet_resnet34, "resnet34"),
                        (imagenet_resnet50, "resnet50")):
    _factory.published_weights = _torchvision_weights(_arch)  # type: ignore[attr-defined]  # a function attribute


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("imagenet_resnet18", imagenet_resnet18)
    register("imagenet_resnet34", imagenet_resnet34)
    register("imagenet_resnet50", imagenet_resnet50)
