"""ImageNet ResNets: torchvision's own modules, with the zoo's ``forward(x, features=...)`` contract.

Subclassing :class:`torchvision.models.ResNet` (instead of wrapping it) keeps every state-dict key
identical to torchvision's, so torchvision's pretrained weights load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ._common import ModelOutput


class FeatureResNet(ResNet):
    """torchvision ResNet whose forward can also return ``[stem, layer1..layer4, pooled]``.

    ``stem`` is the post-ReLU output of ``conv1/bn1`` (before the max-pool), as in mdistiller.
    """

    def forward(self, x: torch.Tensor, features: bool = False) -> ModelOutput:  # type: ignore[override]
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        pooled = torch.flatten(self.avgpool(f4), 1)
        logits = self.fc(pooled)
        return ([stem, f1, f2, f3, f4, pooled], logits) if features else logits


def imagenet_resnet18(num_classes: int = 1000) -> FeatureResNet:
    """ResNet-18 (torchvision layout, no weights), the usual ImageNet student."""
    return FeatureResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def imagenet_resnet34(num_classes: int = 1000) -> FeatureResNet:
    """ResNet-34 (torchvision layout, no weights), the usual ImageNet teacher of ResNet-18."""
    return FeatureResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)


def imagenet_resnet50(num_classes: int = 1000) -> FeatureResNet:
    """ResNet-50 (torchvision layout, no weights), the ImageNet teacher of MobileNet students."""
    return FeatureResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)
