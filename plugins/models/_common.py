"""Small helpers shared by the zoo's model families."""

from __future__ import annotations

import torch
from torch import nn


def init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """Kaiming-normal convs, unit/zero BN, zero conv biases; optionally N(0, std) linear weights.

    Initialisation never changes key names or shapes; it only matters for training from scratch.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups so information crosses group boundaries."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
