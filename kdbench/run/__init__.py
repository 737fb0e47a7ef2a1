"""Running a plan: the worker (one run: teachers, data selection, supervision, the engine), execution."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
    from kdbench.run.execute import execute_plan, runs_to_do, teachers_of
    from kdbench.run.jobs import RunJob, ScoreJob, TeacherJob
    from kdbench.run.options import RunOptions
    from kdbench.run.worker import RunOutcome, Worker, WorkerFactory

__all__ = ["RunJob", "RunOptions", "RunOutcome", "ScoreJob", "TeacherJob", "Worker", "WorkerFactory", "execute_plan",
           "runs_to_do", "teachers_of"]

__getattr__, __dir__ = lazy_names(__name__, {
    "RunJob": "kdbench.run.jobs",
    "RunOptions": "kdbench.run.options",
    "RunOutcome": "kdbench.run.worker",
    "ScoreJob": "kdbench.run.jobs",
    "TeacherJob": "kdbench.run.jobs",
    "Worker": "kdbench.run.worker",
    "WorkerFactory": "kdbench.run.worker",
    "execute_plan": "kdbench.run.execute",
    "runs_to_do": "kdbench.run.execute",
    "teachers_of": "kdbench.run.execute",
})
