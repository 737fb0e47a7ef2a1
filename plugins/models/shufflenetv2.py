"""ShuffleNet V2 (1x) for CIFAR (``ShuffleV2``): stages 116/232/464 with 3/7/3 basic units.

Key names follow RepDistiller's ``ShuffleNetv2.py``: a 1x1 ``conv1/bn1`` stem (24 channels, no
max-pool); each ``layer{i}`` starts with a stride-2 down unit (``conv1..conv5``: left branch depthwise
3x3 + 1x1, right branch 1x1 + depthwise 3x3 + 1x1) followed by basic units (``conv1..conv3`` on half
the channels); then ``conv2/bn2`` (464 -> 1024) and a ``linear`` head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import channel_shuffle, init_weights, run_stages


def _conv(in_c: int, out_c: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class BasicUnitV2(nn.Module):
    """Split channels in half; transform one half (1x1, depthwise 3x3, 1x1); concat; shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = _conv(half, half, 1)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = _conv(half, half, 3, groups=half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = _conv(half, half, 1)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep, work = x.chunk(2, dim=1)
        out = F.relu(self.bn1(self.conv1(work)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([keep, out], dim=1), 2)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The output with the transformed half taken before its final ReLU (same channel order). The kept
        half is a ReLU output already (≥ 0), so ``relu(pre_activation(x))`` equals ``forward(x)``."""
        keep, work = x.chunk(2, dim=1)
        out = F.relu(self.bn1(self.conv1(work)))
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))
        return channel_shuffle(torch.cat([keep, out], dim=1), 2)


class DownUnitV2(nn.Module):
    """Stride-2 unit: both branches see the whole input, each produces half the output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        # left branch
        self.conv1 = _conv(in_channels, in_channels, 3, stride=2, groups=in_channels)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = _conv(in_channels, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        # right branch
        self.conv3 = _conv(in_channels, mid, 1)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = _conv(mid, mid, 3, stride=2, groups=mid)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = _conv(mid, mid, 1)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], dim=1), 2)


class ShuffleNetV2(nn.Module):
    """Three ShuffleNet-V2 stages, a 1x1 conv to ``last_channels``, global pool, ``linear`` head."""

    def __init__(
        self,
        out_channels: tuple[int, int, int] = (116, 232, 464),
        num_blocks: tuple[int, int, int] = (3, 7, 3),
        last_channels: int = 1024,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        stages = []
        for width, n in zip(out_channels, num_blocks, strict=True):
            units = [DownUnitV2(in_channels, width), *[BasicUnitV2(width) for _ in range(n)]]
            stages.append(nn.Sequential(*units))
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(in_channels, last_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(last_channels)
        self.linear = nn.Linear(last_channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        f0 = F.relu(self.bn1(self.conv1(x)))
        # each stage's entry: its output, or with preact its last unit before the final ReLU
        f3, (p1, p2, p3) = run_stages((self.layer1, self.layer2, self.layer3), f0, features and preact)
        out = F.relu(self.bn2(self.conv2(f3)))
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        logits = self.linear(pooled)
        return ([f0, p1, p2, p3, pooled], logits) if features else logits


def shufflev2(num_classes: int = 100) -> ShuffleNetV2:
    """ShuffleNet-V2 1x (1.36 M params), the light student of resnet32x4 / wrn_40_2 teachers."""
    return ShuffleNetV2(num_classes=num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("ShuffleV2", shufflev2)
