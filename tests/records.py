"""Run records built the way the worker builds them, for tests of the store and the tables."""

from __future__ import annotations

from kdbench.contracts import TrainingRecipe
from kdbench.plan import ComponentRef, DatasetRef, RunSpec, TeacherSpec
from kdbench.store import Environment, EpochRecord, RunRecord

RECIPE = TrainingRecipe(epochs=1, batch_size=32, lr=0.05, milestones=(), lr_decay=0.1, momentum=0.9,
                        weight_decay=5e-4, nesterov=False, augment=True, drop_last=False)
DATASET = DatasetRef("digits", {"image_size": 8}, "1")
ENVIRONMENT = Environment(python="3.11", platform="test", torch="test", kdbench="0.1.0", device="cpu", host="testhost",
                          device_name="test CPU", executor="serial")


def make_spec(label: str, method: str, teacher: str | None, student: str, seed: int, *, suite: str = "s",
              order: tuple[int, int] = (0, 0), dataset: DatasetRef = DATASET, **fields) -> RunSpec:
    tspec = TeacherSpec(teacher, "1", dataset, RECIPE, 0) if teacher else None
    return RunSpec(suite=suite, label=label, method=ComponentRef(method, {}, "1"), student=student,
                   student_version="1", dataset=dataset, recipe=RECIPE, seed=seed, teacher=tspec, order=order,
                   **fields)


def make_record(spec: RunSpec, best: float, last: float, teacher_top1: float | None = None,
                wall_time_s: float = 1.0, **fields) -> RunRecord:
    epoch = EpochRecord(epoch=1, lr=0.05, train_loss=1.0, train_top1=50.0, test_top1=last, epoch_time_s=wall_time_s,
                        train_images_per_s=100.0, loss_ce=1.0)
    return RunRecord(
        key=spec.key, suite=spec.suite, label=spec.label, method=spec.method.name, student=spec.student,
        teacher=spec.teacher.arch if spec.teacher else None, pair=spec.pair, seed=spec.seed,
        dataset=spec.dataset.name, spec=spec, last_top1=last, best_top1=best, best_epoch=1,
        teacher_top1=teacher_top1, teacher_key=spec.teacher.key if spec.teacher else None, selection=None,
        metrics=[epoch], wall_time_s=wall_time_s, train_images_per_s=100.0, environment=ENVIRONMENT,
        git_revision=None, finished_at=0.0, **fields,
    )
