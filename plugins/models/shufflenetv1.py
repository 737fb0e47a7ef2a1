"""ShuffleNet V1 for CIFAR (``ShuffleV1``): groups 3, stage widths 240/480/960, 4/8/4 units.

Key names follow RepDistiller's ``ShuffleNetv1.py``: a 1x1 ``conv1/bn1`` stem (24 channels, no
max-pool), ``layer1..layer3`` of units with ``conv1`` (grouped 1x1, ungrouped when fed by the
24-channel stem) / ``conv2`` (depthwise 3x3) / ``conv3`` (grouped 1x1), and a ``linear`` head.
The first unit of each stage has stride 2 and concatenates an average-pooled shortcut, so its
branch produces ``out - in`` channels (hence ``layer1.0.conv3`` is 216 = 240 - 24 wide).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import channel_shuffle, init_weights, run_stages


class ShuffleUnitV1(nn.Module):
    """Grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1, added to (stride 1) or concatenated
    with an avg-pooled copy of (stride 2) the input."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int) -> None:
        super().__init__()
        mid = out_planes // 4
        self.stride = stride
        self.first_groups = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(in_planes, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The sum (or concatenation) of branch and shortcut, before the unit's final ReLU."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return torch.cat([out, F.avg_pool2d(x, 3, stride=2, padding=1)], dim=1)
        return out + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pre_activation(x))


class ShuffleNetV1(nn.Module):
    """Three ShuffleNet-V1 stages after a 1x1 stem; global average pool and ``linear`` head."""

    def __init__(
        self,
        out_planes: tuple[int, int, int] = (240, 480, 960),
        num_blocks: tuple[int, int, int] = (4, 8, 4),
        groups: int = 3,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        stages = []
        for width, n in zip(out_planes, num_blocks, strict=True):
            units = [ShuffleUnitV1(in_planes, width - in_planes, 2, groups)]
            units += [ShuffleUnitV1(width, width, 1, groups) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            in_planes = width
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(in_planes, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        f0 = F.relu(self.bn1(self.conv1(x)))
        # each stage's entry: its output, or with preact its last unit before the final ReLU
        f3, (p1, p2, p3) = run_stages((self.layer1, self.layer2, self.layer3), f0, features and preact)
        pooled = torch.flatten(F.adaptive_avg_pool2d(f3, 1), 1)
        logits = self.linear(pooled)
        return ([f0, p1, p2, p3, pooled], logits) if features else logits


def shufflev1(num_classes: int = 100) -> ShuffleNetV1:
    """ShuffleNet-V1 (g=3, 0.95 M params), the light student of resnet32x4 / wrn_40_2 teachers."""
    return ShuffleNetV1(num_classes=num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("ShuffleV1", shufflev1)
