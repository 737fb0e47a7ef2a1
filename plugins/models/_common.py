"""Small helpers shared by the zoo's model families."""

from __future__ import annotations

from typing import Protocol, cast

import torch
import torch.nn.functional as F
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


class EndsInReLU(Protocol):
    """A block whose output is ``relu(block.pre_activation(x))``."""

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor: ...


def stage_with_preact(stage: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A stage's output and its last block's value before the final ReLU (``forward(..., preact=True)``)."""
    blocks = list(stage)
    for block in blocks[:-1]:
        x = block(x)
    pre = cast(EndsInReLU, blocks[-1]).pre_activation(x)
    return F.relu(pre), pre


def run_stages(stages: tuple[nn.Sequential, ...], x: torch.Tensor,
               preact: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The stages in turn: the last one's output, and each stage's feature entry (its output, or with ``preact``
    its last block's value before the final ReLU, RepDistiller's ``preact``)."""
    entries = []
    for stage in stages:
        if preact:
            x, entry = stage_with_preact(stage, x)
        else:
            x = entry = stage(x)
        entries.append(entry)
    return x, entries


def batch_norm_unrecorded(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)`` without touching its running statistics: batch statistics in training mode, running ones in
    eval mode. For a second look at a map that the network normalises itself (a WRN's pre-activation feature)."""
    if bn.training:
        return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, momentum=0.0, eps=bn.eps)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
