"""CIFAR ResNet-50 with bottleneck blocks (``ResNet50``), laid out as in RepDistiller's ``resnetv2.py``.

3x3 stride-1 ``conv1/bn1`` stem without max-pool (32 px inputs), four ``layer{i}`` stages of 3/4/6/3
bottlenecks (64/128/256/512 wide, expansion 4), a ``shortcut`` (1x1 conv + BN) where shape changes and
a ``linear`` head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import init_weights, run_stages


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand x4, plus shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
            )

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The residual sum, before the block's final ReLU."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pre_activation(x))


class BottleneckResNet(nn.Module):
    """Four-stage bottleneck ResNet for 32 px inputs."""

    def __init__(self, num_blocks: tuple[int, int, int, int], num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, n, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2), strict=True):
            units = []
            for i in range(n):
                units.append(Bottleneck(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        f0 = F.relu(self.bn1(self.conv1(x)))
        # each stage's entry: its output, or with preact its last residual sum before the ReLU
        out, entries = run_stages((self.layer1, self.layer2, self.layer3, self.layer4), f0, features and preact)
        feats = [f0, *entries]
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        logits = self.linear(pooled)
        return ([*feats, pooled], logits) if features else logits


def resnet50(num_classes: int = 100) -> BottleneckResNet:
    """CIFAR ResNet-50 (23.7 M params), the teacher of the MobileNetV2 / ShuffleNet pairs."""
    return BottleneckResNet((3, 4, 6, 3), num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("ResNet50", resnet50)
