"""From a plan to records: every teacher first, then every run through the executor."""

from __future__ import annotations

from collections.abc import Iterator

from kdbench.contracts import Executor
from kdbench.plan import Plan, RunSpec, TeacherSpec
from kdbench.run.options import RunOptions
from kdbench.run.worker import RunOutcome, WorkerFactory
from kdbench.store import RunStore


def teachers_of(runs: list[RunSpec]) -> list[TeacherSpec]:
    """The distinct teachers of ``runs`` (harness-trained and checkpoints), in run order."""
    unique: dict[str, TeacherSpec] = {}
    for run in runs:
        if run.teacher is not None:
            unique.setdefault(run.teacher.key, run.teacher)
    return list(unique.values())


def runs_to_do(plan: Plan, options: RunOptions) -> list[RunSpec]:
    """The runs that will train: all with ``--force``, else those the run store does not have as done."""
    store = RunStore(options.runs_root)
    return [r for r in plan.runs if options.force or not store.is_done(r)]


def execute_plan(plan: Plan, options: RunOptions, executor: Executor) -> Iterator[RunOutcome]:
    """Teachers first, then every run through the executor.

    Every teacher of a run still to do is obtained here, in this process, before any student
    trains: harness-trained teachers are trained once, and external checkpoints are loaded strictly,
    so a checkpoint that does not fit fails the suite before any work rather than half way.
    """
    factory = WorkerFactory(options, plan.suite.plugin_files)
    teachers = teachers_of(runs_to_do(plan, options))
    if teachers:
        worker = factory()
        for tspec in teachers:
            worker.teachers.get(tspec)
    yield from executor.run(plan.runs, factory)
