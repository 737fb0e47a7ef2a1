"""The resolved training recipe of one run (docs/methods.md §1) and its learning-rate schedule.

Suite files describe a recipe with rules (a smaller lr for some students, defaults for every field);
``kdbench.plan`` resolves them for one student into a :class:`TrainingRecipe`, which is what enters
the run's key, what the engine trains under and what a method may read in its context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

TeacherCacheMode = Literal["auto", "on", "off"]
TeacherCacheDtype = Literal["float32", "float16"]


def lr_at_epoch(base_lr: float, epoch: int, milestones: tuple[int, ...] | list[int], decay: float) -> float:
    """Step schedule, 1-indexed epochs: epochs after milestone m (m+1, m+2, ...) run at ×decay."""
    return base_lr * decay ** sum(1 for m in milestones if epoch > m)


@dataclass(frozen=True)
class TrainingRecipe:
    """SGD with momentum and a step schedule, resolved for one student.

    The last four fields say how to execute, not what to compute, and stay out of the run key: the
    teacher-output cache in float32 serves the live teacher's logits exactly (docs/methods.md §11),
    ``torch.compile`` computes the same function, and ``devices`` splits the same global batches over DDP
    processes (numbers move only through BatchNorm's per-process batch statistics; the record says how
    many processes trained it). A float16 cache does change the numbers, so
    ``teacher_cache_dtype`` enters the key when it is ``float16`` (and only then, so that every key made
    before the cache existed still holds).
    """

    epochs: int
    batch_size: int
    lr: float
    milestones: tuple[int, ...]
    lr_decay: float
    momentum: float
    weight_decay: float
    nesterov: bool
    augment: bool
    drop_last: bool
    teacher_cache: TeacherCacheMode = "auto"
    teacher_cache_dtype: TeacherCacheDtype = "float32"
    compile: bool = False
    devices: int = 1  # DDP processes (GPUs) one run trains on; the global batch is ``batch_size`` either way

    def lr_at(self, epoch: int) -> float:
        return lr_at_epoch(self.lr, epoch, self.milestones, self.lr_decay)

    def identity(self) -> dict[str, Any]:
        """The plain form that enters run keys and records (milestones as a list)."""
        lossy_cache = {"teacher_cache_dtype": self.teacher_cache_dtype} if self.teacher_cache_dtype != "float32" else {}
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "milestones": list(self.milestones),
            "lr_decay": self.lr_decay,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "augment": self.augment,
            "drop_last": self.drop_last,
            **lossy_cache,
        }

    @classmethod
    def from_identity(cls, d: Mapping[str, Any]) -> TrainingRecipe:
        return cls(**{**d, "milestones": tuple(d["milestones"])})
