"""The training recipe (METHODS.md §1) and its learning-rate schedule.

Defaults are the standard CIFAR-100 KD recipe shared by RepDistiller and mdistiller.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Recipe(BaseModel):
    """SGD recipe. ``resolved(student)`` gives the plain dict that enters run keys and records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(240, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0)
    # MobileNet/ShuffleNet students train at a smaller rate in the reference implementations.
    small_student_lr: float = Field(0.01, gt=0)
    small_students: tuple[str, ...] = ("MobileNetV2", "ShuffleV1", "ShuffleV2")
    milestones: tuple[int, ...] = (150, 180, 210)
    lr_decay: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    nesterov: bool = False
    augment: bool = True
    drop_last: bool = False
    eval_batch_size: int = Field(1024, ge=1)

    @model_validator(mode="after")
    def _milestones_sorted(self) -> Recipe:
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError("milestones must be increasing")
        return self

    def lr_for(self, student: str) -> float:
        return self.small_student_lr if student in self.small_students else self.lr

    def resolved(self, student: str) -> dict[str, Any]:
        """What determines the numbers for this student: the effective lr, not the rule."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr_for(student),
            "milestones": list(self.milestones),
            "lr_decay": self.lr_decay,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "augment": self.augment,
            "drop_last": self.drop_last,
        }


def lr_at_epoch(base_lr: float, epoch: int, milestones: list[int], decay: float) -> float:
    """Step schedule, 1-indexed epochs: epochs after milestone m (m+1, m+2, ...) run at ×decay."""
    return base_lr * decay ** sum(1 for m in milestones if epoch > m)
