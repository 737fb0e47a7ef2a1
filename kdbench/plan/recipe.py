"""The training recipe as a suite file writes it (docs/methods.md §1), resolved per student.

Defaults are the standard CIFAR-100 KD recipe shared by RepDistiller and mdistiller. A suite's recipe
holds rules (MobileNet/ShuffleNet students train at a smaller lr); :meth:`Recipe.resolved` applies them
for one student and gives the :class:`~kdbench.contracts.recipe.TrainingRecipe` that enters the key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kdbench.contracts.recipe import TeacherCacheDtype, TeacherCacheMode, TrainingRecipe


class Recipe(BaseModel):
    """SGD recipe with the CIFAR-100 defaults. Every field changes the numbers and is keyed, except the
    execution settings at the end (see :class:`~kdbench.contracts.recipe.TrainingRecipe`)."""

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
    # The exact teacher-output cache (docs/methods.md §11): auto uses it when it saves teacher forwards.
    teacher_cache: TeacherCacheMode = "auto"
    teacher_cache_dtype: TeacherCacheDtype = "float32"
    compile: bool = False  # torch.compile of the student and the loss, CUDA only
    devices: int = Field(1, ge=1)  # DDP processes per run (GPUs; gloo processes on a CPU), not keyed

    @field_validator("teacher_cache", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        """YAML reads a bare ``on``/``off`` as a boolean."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _milestones_sorted(self) -> Recipe:
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError("milestones must be increasing")
        return self

    def lr_for(self, student: str) -> float:
        return self.small_student_lr if student in self.small_students else self.lr

    def resolved(self, student: str) -> TrainingRecipe:
        """What determines the numbers for this student: the effective lr, not the rule."""
        return TrainingRecipe(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr_for(student),
            milestones=tuple(self.milestones),
            lr_decay=self.lr_decay,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
            augment=self.augment,
            drop_last=self.drop_last,
            teacher_cache=self.teacher_cache,
            teacher_cache_dtype=self.teacher_cache_dtype,
            compile=self.compile,
            devices=self.devices,
        )
