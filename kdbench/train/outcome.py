"""What training returns: each epoch's measurements and the run's totals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from kdbench.contracts.epochs import LOSS_PREFIX, OPTIONAL_EPOCH_FIELDS, EpochFields


class EpochMetrics(EpochFields):
    """One epoch as the engine measured it, with each named loss term's per-sample mean."""

    losses: dict[str, float] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Flat form: loss terms as ``loss_<name>``; the optional fields only when they were measured."""
        flat = {k: v for k, v in self.model_dump(exclude={"losses"}).items()
                if not (k in OPTIONAL_EPOCH_FIELDS and v is None)}
        return {**flat, **{f"{LOSS_PREFIX}{k}": v for k, v in self.losses.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochMetrics:
        losses = {k.removeprefix(LOSS_PREFIX): v for k, v in d.items() if k.startswith(LOSS_PREFIX)}
        return cls(**{k: v for k, v in d.items() if not k.startswith(LOSS_PREFIX)}, losses=losses)


@dataclass
class TrainOutcome:
    """Every epoch trained so far (resumed epochs included), the wall time and the mean training speed."""

    epochs: list[EpochMetrics] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_images_per_s: float = 0.0

    @property
    def last_top1(self) -> float:
        return self.epochs[-1].test_top1

    @property
    def best(self) -> EpochMetrics:
        return max(self.epochs, key=lambda m: m.test_top1)

    def add(self, metrics: EpochMetrics, seconds: float) -> None:
        self.epochs.append(metrics)
        self.wall_time_s += seconds
        speeds = [m.train_images_per_s for m in self.epochs if not math.isnan(m.train_images_per_s)]
        self.train_images_per_s = sum(speeds) / len(speeds) if speeds else float("nan")
