"""MobileNetV2 for CIFAR (``MobileNetV2``): width 0.5, expansion 6, stride-2 stem, last conv 1280.

Key names follow RepDistiller's ``mobilenetv2.py``: ``conv1`` = (conv, BN, ReLU), ``blocks.{s}.{i}.conv``
= (1x1 expand, BN, ReLU, depthwise 3x3, BN, ReLU, 1x1 project, BN) -- the expansion conv exists even
for the t=1 first stage -- then ``conv2`` = (1x1 to 1280, BN, ReLU) and ``classifier.0`` (a Linear
wrapped in a Sequential). The second stage keeps stride 1 (CIFAR change); the 1280 last width is not
scaled by the 0.5 width multiplier.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import init_weights

# (expansion t, base channels c, units n, first stride s) per stage.
_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # stride 1 instead of ImageNet's 2: CIFAR images are small
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
# Stages whose outputs are the intermediate features (after stages 1, 2, 4 and 6).
_FEATURE_STAGES = (1, 2, 4, 6)


def _conv_bn_relu(in_c: int, out_c: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_c),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1); identity shortcut when shapes match."""

    def __init__(self, in_c: int, out_c: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_c * expansion
        self.use_residual = stride == 1 and in_c == out_c
        self.conv = nn.Sequential(
            nn.Conv2d(in_c, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_c, 1, bias=False),
            nn.BatchNorm2d(out_c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """Seven inverted-residual stages; features are the stem and the outputs of stages 1, 2, 4, 6."""

    def __init__(self, width_mult: float = 0.5, num_classes: int = 100, last_channels: int = 1280) -> None:
        super().__init__()
        in_c = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(3, in_c, 3, stride=2)
        stages = []
        for t, c, n, s in _SETTINGS:
            out_c = int(c * width_mult)
            units = []
            for i in range(n):
                units.append(InvertedResidual(in_c, out_c, s if i == 0 else 1, t))
                in_c = out_c
            stages.append(nn.Sequential(*units))
        self.blocks = nn.ModuleList(stages)
        last = int(last_channels * width_mult) if width_mult > 1.0 else last_channels
        self.conv2 = _conv_bn_relu(in_c, last, 1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        init_weights(self, linear_std=0.01)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        # ``preact`` changes nothing: the stage features are BN outputs of linear bottlenecks, with no ReLU to skip
        out = self.conv1(x)
        feats = [out]
        for i, stage in enumerate(self.blocks):
            out = stage(out)
            if i in _FEATURE_STAGES:
                feats.append(out)
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.conv2(out), 1), 1)
        feats.append(pooled)
        logits = self.classifier(pooled)
        return (feats, logits) if features else logits


def mobilenetv2(num_classes: int = 100) -> MobileNetV2:
    """MobileNetV2 x0.5 (0.81 M params), the light student of vgg13 / ResNet50 teachers."""
    return MobileNetV2(width_mult=0.5, num_classes=num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("MobileNetV2", mobilenetv2)
