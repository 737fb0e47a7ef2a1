"""torchvision's ResNet with the zoo's ``forward(x, features=...)``; imported only when one is built,
because importing torchvision costs seconds that every command would otherwise pay."""

from __future__ import annotations

import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from kdbench.contracts import ModelOutput

__all__ = ["BasicBlock", "Bottleneck", "FeatureResNet"]


class FeatureResNet(ResNet):  # type: ignore[misc, unused-ignore]  # torchvision has no type hints: ResNet is Any
    """torchvision ResNet whose forward can also return ``[stem, layer1..layer4, pooled]``.

    ``stem`` is the post-ReLU output of ``conv1/bn1`` (before the max-pool), as in mdistiller.
    """

    def forward(self, x: torch.Tensor, features: bool = False) -> ModelOutput:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        pooled = torch.flatten(self.avgpool(f4), 1)
        logits = self.fc(pooled)
        return ([stem, f1, f2, f3, f4, pooled], logits) if features else logits
