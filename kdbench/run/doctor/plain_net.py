"""A model without BatchNorm, registered only for the doctor's DDP check (a plugin file its tiny suite names).

With BatchNorm each rank normalises its share of the batch with its own statistics, so two processes
legitimately differ from one; without it DDP's gradient is the one-process gradient summed in another
order, and the doctor can hold the two runs to the 1e-4 that docs/methods.md §1 promises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kdbench.contracts import hookimpl


class DoctorPlainNet(nn.Module):
    """Two convolutions and a linear head: small enough for a seconds-long run on any CPU."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stage = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16, num_classes)

    def forward(self, x: torch.Tensor, features: bool = False) -> object:
        stem = torch.relu(self.stem(x))
        stage = torch.relu(self.stage(stem))
        pooled = nn.functional.adaptive_avg_pool2d(stage, 4).flatten(1)
        logits = self.fc(pooled)
        return ([stem, stage, pooled], logits) if features else logits


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register("doctor_plain_net", DoctorPlainNet, description="the doctor's BatchNorm-free DDP check model")
