"""Pre-activation Wide ResNets for CIFAR (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2).

Key names follow RepDistiller's ``wrn.py``: ``conv1`` stem, ``block{1,2,3}.layer.{i}`` units with
``bn1/conv1/bn2/conv2`` and a ``convShortcut`` (1x1, no BN) only where the width changes, then a final
``bn1`` and ``fc``. Features are the raw residual sums of each stage (no trailing BN-ReLU); with ``preact=True``
each sum passes through the BN that pre-activates it next, as RepDistiller's ``preact`` features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import batch_norm_unrecorded, init_weights


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv twice. When the width changes, the 1x1 shortcut also sees the pre-activated input."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.convShortcut: nn.Conv2d | None = None  # name fixed by published checkpoints
        if in_planes != out_planes:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out: torch.Tensor = self.conv2(F.relu(self.bn2(self.conv1(act))))
        shortcut = x if self.convShortcut is None else self.convShortcut(act)
        return out + shortcut


class WideStage(nn.Module):
    """A stage of ``n`` wide blocks, held as ``.layer`` to keep the reference key names."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        units = []
        for i in range(n):
            units.append(WideBasicBlock(in_planes, out_planes, stride if i == 0 else 1))
            in_planes = out_planes
        self.layer = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out


class WideResNet(nn.Module):
    """WRN-depth-widen: three stages of ``(depth - 4) / 6`` blocks, widths 16k, 32k, 64k."""

    def __init__(self, depth: int, widen: int, num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], 1)
        self.block2 = WideStage(n, widths[1], widths[2], 2)
        self.block3 = WideStage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        f0 = self.conv1(x)
        f1 = self.block1(f0)
        f2 = self.block2(f1)
        f3 = self.block3(f2)
        pooled = torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn1(f3)), 1), 1)
        logits = self.fc(pooled)
        if features and preact:
            # RepDistiller's preact: each sum through the BN that pre-activates it next (the next stage's first
            # unit's bn1, or the final bn1), without the ReLU; these BNs' running statistics are not moved twice
            next_bns = (
                cast(WideBasicBlock, self.block2.layer[0]).bn1,
                cast(WideBasicBlock, self.block3.layer[0]).bn1,
                self.bn1,
            )
            p1, p2, p3 = (batch_norm_unrecorded(bn, f) for bn, f in zip(next_bns, (f1, f2, f3), strict=True))
            return [f0, p1, p2, p3, pooled], logits
        return ([f0, f1, f2, f3, pooled], logits) if features else logits


def wrn_16_1(num_classes: int = 100) -> WideResNet:
    """WRN-16-1 (0.18 M params)."""
    return WideResNet(16, 1, num_classes)


def wrn_16_2(num_classes: int = 100) -> WideResNet:
    """WRN-16-2 (0.70 M params), the usual student of WRN-40-2."""
    return WideResNet(16, 2, num_classes)


def wrn_40_1(num_classes: int = 100) -> WideResNet:
    """WRN-40-1 (0.57 M params), the thin student of WRN-40-2."""
    return WideResNet(40, 1, num_classes)


def wrn_40_2(num_classes: int = 100) -> WideResNet:
    """WRN-40-2 (2.26 M params), a standard CIFAR-100 teacher."""
    return WideResNet(40, 2, num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("wrn_16_1", wrn_16_1)
    register("wrn_16_2", wrn_16_2)
    register("wrn_40_1", wrn_40_1)
    register("wrn_40_2", wrn_40_2)
