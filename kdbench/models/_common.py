"""Small helpers shared by the zoo's model families."""

from __future__ import annotations

from typing import TypeAlias

import torch
from torch import nn

#: ``forward(x)`` returns logits; ``forward(x, features=True)`` returns ``(feats, logits)``.
ModelOutput: TypeAlias = torch.Tensor | tuple[list[torch.Tensor], torch.Tensor]


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
