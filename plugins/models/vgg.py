"""VGG-BN for CIFAR (vgg8, vgg11, vgg13, vgg16, vgg19), laid out as in RepDistiller's ``vgg.py``.

Five conv blocks ``block0..block4`` of (conv with bias, BN, ReLU) units, the last ReLU of each block
applied in ``forward`` so that the block itself ends in BN (keys ``block{i}.{3j}`` conv, ``.{3j+1}`` BN).
Max-pooling follows blocks 0, 1 and 2; after block 3 only for inputs of 64 px or more, so that block 4
always sees a 4x4 map (the source of the two 512x4x4 features). A global average pool and a single
``classifier`` linear finish the net.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kdbench.contracts import ModelOutput, hookimpl

from ._common import init_weights

# Per-block conv widths.
_CONFIGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _make_block(in_channels: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers[:-1])  # the block's final ReLU runs in forward()


class VGG(nn.Module):
    """VGG-BN with five blocks; ``forward(features=True)`` gives six features (five blocks + pooled)."""

    def __init__(self, config: list[list[int]], num_classes: int = 100) -> None:
        super().__init__()
        in_channels = 3
        blocks = []
        for widths in config:
            blocks.append(_make_block(in_channels, widths))
            in_channels = widths[-1]
        self.block0, self.block1, self.block2, self.block3, self.block4 = blocks
        self.classifier = nn.Linear(in_channels, num_classes)
        init_weights(self, linear_std=0.01)

    def forward(self, x: torch.Tensor, features: bool = False, preact: bool = False) -> ModelOutput:
        large_input = x.shape[-2] >= 64
        f0 = F.relu(self.block0(x))
        p1 = self.block1(F.max_pool2d(f0, 2))
        f1 = F.relu(p1)
        p2 = self.block2(F.max_pool2d(f1, 2))
        f2 = F.relu(p2)
        p3 = self.block3(F.max_pool2d(f2, 2))
        f3 = F.relu(p3)
        p4 = self.block4(F.max_pool2d(f3, 2) if large_input else f3)
        f4 = F.relu(p4)
        pooled = torch.flatten(F.adaptive_avg_pool2d(f4, 1), 1)
        logits = self.classifier(pooled)
        if features and preact:  # each block's last BN output, before the ReLU (RepDistiller's preact)
            return [f0, p1, p2, p3, p4, pooled], logits
        return ([f0, f1, f2, f3, f4, pooled], logits) if features else logits


def vgg8(num_classes: int = 100) -> VGG:
    """VGG-8-BN (3.97 M params), the student of the vgg13 teacher."""
    return VGG(_CONFIGS["vgg8"], num_classes)


def vgg11(num_classes: int = 100) -> VGG:
    """VGG-11-BN (9.28 M params)."""
    return VGG(_CONFIGS["vgg11"], num_classes)


def vgg13(num_classes: int = 100) -> VGG:
    """VGG-13-BN (9.46 M params), a standard CIFAR-100 teacher."""
    return VGG(_CONFIGS["vgg13"], num_classes)


def vgg16(num_classes: int = 100) -> VGG:
    """VGG-16-BN (14.77 M params)."""
    return VGG(_CONFIGS["vgg16"], num_classes)


def vgg19(num_classes: int = 100) -> VGG:
    """VGG-19-BN (20.09 M params)."""
    return VGG(_CONFIGS["vgg19"], num_classes)


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("vgg8", vgg8)
    register("vgg11", vgg11)
    register("vgg13", vgg13)
    register("vgg16", vgg16)
    register("vgg19", vgg19)
