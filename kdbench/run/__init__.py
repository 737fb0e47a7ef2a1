"""Running a plan: the worker (one run: teachers, data selection, supervision, the engine), execution."""

from kdbench.run.execute import execute_plan, runs_to_do, teachers_of
from kdbench.run.jobs import RunJob, ScoreJob, TeacherJob
from kdbench.run.options import RunOptions
from kdbench.run.worker import RunOutcome, Worker, WorkerFactory

__all__ = ["RunJob", "RunOptions", "RunOutcome", "ScoreJob", "TeacherJob", "Worker", "WorkerFactory", "execute_plan",
           "runs_to_do", "teachers_of"]
