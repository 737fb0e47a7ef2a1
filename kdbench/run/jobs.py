"""The jobs of a plan, in the order they run: teachers, then Data Selection scores, then student runs.

Each job is plain, picklable data that an executor carries to a worker (``job.execute(worker)``); when
the process running it dies, the executor reports ``job.crashed(reason)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from kdbench.plan import ComponentRef, RunSpec, TeacherSpec
from kdbench.run.worker import RunOutcome, Worker
from kdbench.train.engine import TrainingDiverged


@dataclass(frozen=True)
class TeacherJob:
    """Train a teacher (or find it trained) and store it by content."""

    spec: TeacherSpec
    suite: str = ""  # the suite that needs it: where loggers group its training

    @property
    def label(self) -> str:
        return f"teacher {self.spec.arch}"

    def execute(self, worker: Worker) -> RunOutcome:
        try:
            record = worker.teachers.get(self.spec, self.suite).record
        except TrainingDiverged as exc:
            return self.crashed(f"TrainingDiverged: {exc}")
        return RunOutcome(self.spec.key, self.label, self.spec.arch, None, "finished", kind="teacher",
                          detail=f"test top-1 {record.test_top1:.2f}")

    def crashed(self, reason: str) -> RunOutcome:
        return RunOutcome(self.spec.key, self.label, self.spec.arch, None, "failed", error=reason, kind="teacher")


@dataclass(frozen=True)
class ScoreJob:
    """Score a teacher's training set with a data-value estimator (or find the scores cached)."""

    teacher: TeacherSpec
    estimator: ComponentRef

    @property
    def label(self) -> str:
        return f"{self.estimator.name} scores on {self.teacher.arch}"

    def execute(self, worker: Worker) -> RunOutcome:
        stored = worker.scorer.scores(self.teacher, self.estimator)
        return RunOutcome(stored.key, self.label, self.teacher.arch, None, "finished", kind="scores",
                          detail=f"{stored.values.shape[0]} samples in {stored.seconds:.2f} s")

    def crashed(self, reason: str) -> RunOutcome:
        return RunOutcome("", self.label, self.teacher.arch, None, "failed", error=reason, kind="scores")


@dataclass(frozen=True)
class RunJob:
    """Train one student run (or find it done) and store its record."""

    spec: RunSpec

    @property
    def label(self) -> str:
        return f"{self.spec.label} {self.spec.pair} seed {self.spec.seed}"

    def execute(self, worker: Worker) -> RunOutcome:
        return worker.run(self.spec)

    def crashed(self, reason: str) -> RunOutcome:
        return RunOutcome.of(self.spec, "failed", error=reason)
