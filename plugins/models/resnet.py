"""CIFAR ResNets with basic blocks (resnet8 ... resnet110, resnet8x4, resnet32x4).

Key names and shapes follow RepDistiller's ``resnet.py`` so that its published teacher checkpoints load
with ``strict=True``: ``conv1/bn1`` stem, ``layer1..layer3`` of ``n = (depth - 2) / 6`` blocks, a 1x1
``downsample`` projection (conv + BN) wherever stride or width changes, and an ``fc`` head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import init_weights, run_stages


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs with an identity or 1x1-projection shortcut; ReLU after the sum."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The residual sum, before the block's final ReLU."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pre_activation(x))


class CifarResNet(nn.Module):
    """Three-stage CIFAR ResNet; ``widths = (stem, stage1, stage2, stage3)``."""

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        stages = []
        for width, stride in zip(widths[1:], (1, 2, 2), strict=True):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, width, stride if j == 0 else 1))
                in_planes = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # RepDistiller uses AvgPool2d(8): identical at 32 px
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        f0 = F.relu(self.bn1(self.conv1(x)))
        # each stage's entry: its output, or with preact its last unit before the final ReLU
        f3, (p1, p2, p3) = run_stages((self.layer1, self.layer2, self.layer3), f0, features and preact)
        pooled = torch.flatten(self.avgpool(f3), 1)
        logits = self.fc(pooled)
        return ([f0, p1, p2, p3, pooled], logits) if features else logits


_BASE = (16, 16, 32, 64)
_X4 = (32, 64, 128, 256)


def resnet8(num_classes: int = 100) -> CifarResNet:
    """ResNet-8 (0.08 M params), the smallest CIFAR student."""
    return CifarResNet(8, _BASE, num_classes)


def resnet14(num_classes: int = 100) -> CifarResNet:
    """ResNet-14 (0.18 M params)."""
    return CifarResNet(14, _BASE, num_classes)


def resnet20(num_classes: int = 100) -> CifarResNet:
    """ResNet-20 (0.28 M params), the classic student of resnet56 / resnet110."""
    return CifarResNet(20, _BASE, num_classes)


def resnet32(num_classes: int = 100) -> CifarResNet:
    """ResNet-32 (0.47 M params), a student of resnet110."""
    return CifarResNet(32, _BASE, num_classes)


def resnet44(num_classes: int = 100) -> CifarResNet:
    """ResNet-44 (0.67 M params)."""
    return CifarResNet(44, _BASE, num_classes)


def resnet56(num_classes: int = 100) -> CifarResNet:
    """ResNet-56 (0.86 M params), a standard CIFAR-100 teacher."""
    return CifarResNet(56, _BASE, num_classes)


def resnet110(num_classes: int = 100) -> CifarResNet:
    """ResNet-110 (1.74 M params), a standard CIFAR-100 teacher."""
    return CifarResNet(110, _BASE, num_classes)


def resnet8x4(num_classes: int = 100) -> CifarResNet:
    """ResNet-8 with 4x widths (1.23 M params), the student of resnet32x4."""
    return CifarResNet(8, _X4, num_classes)


def resnet32x4(num_classes: int = 100) -> CifarResNet:
    """ResNet-32 with 4x widths (7.43 M params), a strong CIFAR-100 teacher."""
    return CifarResNet(32, _X4, num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("resnet8", resnet8)
    register("resnet14", resnet14)
    register("resnet20", resnet20)
    register("resnet32", resnet32)
    register("resnet44", resnet44)
    register("resnet56", resnet56)
    register("resnet110", resnet110)
    register("resnet8x4", resnet8x4)
    register("resnet32x4", resnet32x4)
