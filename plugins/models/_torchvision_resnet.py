"""torchvision's ResNet with the zoo's ``forward(x, features=...)``; imported only when one is built,
because importing torchvision costs seconds that every command would otherwise pay."""

from __future__ import annotations

import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from kdbench.contracts import ModelOutput

__all__ = ["BasicBlock", "Bottleneck", "FeatureResNet"]


class FeatureResNet(ResNet):  # type: ignore[misc, unused-ignore]  # torchvision has no type hints: ResNet is Any
    """torchvision ResNet whose forward can also return ``[stem, layer1..layer4, pooled]``.

    ``stem`` is the post-ReLU output of ``conv1/bn1`` (before the max-pool), as in mdistiller; with ``preact=True``
    the layers' entries are their last residual sums before the ReLU (as the ImageNet code of ReviewKD returns them).
    """

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        stem = self.relu(self.bn1(self.conv1(x)))
        out, feats = self.maxpool(stem), [stem]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            if features and preact:  # the stage's last residual sum before its ReLU
                *head, last = stage
                for block in head:
                    out = block(out)
                pre = _pre_activation(last, out)
                out = torch.relu(pre)
                feats.append(pre)
            else:
                out = stage(out)
                feats.append(out)
        pooled = torch.flatten(self.avgpool(out), 1)
        logits = self.fc(pooled)
        return ([*feats, pooled], logits) if features else logits


def _pre_activation(block: BasicBlock | Bottleneck, x: torch.Tensor) -> torch.Tensor:
    """torchvision's block forward without its final ReLU: the residual sum."""
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    if isinstance(block, Bottleneck):
        out = block.bn3(block.conv3(block.relu(out)))
    identity = x if block.downsample is None else block.downsample(x)
    return out + identity
