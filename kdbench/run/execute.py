"""From a plan to records, in waves through one executor: teachers, then Data Selection scores, then runs.

Every teacher a remaining run needs is there before any student trains, and every score file before
any run that selects with it, so the runs of the last wave never wait on one another. External
checkpoints are checked here first, in this process: one that does not fit stops the suite with one
line before any work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from kdbench.contracts import Executor, Job
from kdbench.errors import KdbenchError
from kdbench.plan import Plan, RunSpec, TeacherSpec
from kdbench.run.jobs import RunJob, ScoreJob, TeacherJob
from kdbench.run.options import RunOptions
from kdbench.run.worker import RunOutcome, WorkerFactory, failure_detail
from kdbench.store import FailureRecord, RunStore, ScoreCache, TeacherStore, scores_key


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


def teacher_jobs(todo: list[RunSpec], options: RunOptions, suite: str = "") -> list[TeacherJob]:
    """Harness-trained teachers of the remaining runs that the teacher store does not have yet."""
    store = TeacherStore(options.home_path)
    return [TeacherJob(t, suite) for t in teachers_of(todo) if t.checkpoint is None and store.record(t) is None]


def score_jobs(todo: list[RunSpec], options: RunOptions) -> list[ScoreJob]:
    """Scores the remaining runs select with that are not cached yet, each once."""
    cache, jobs = ScoreCache(options.home_path), {}
    for run in todo:
        if run.selection is not None and run.selection.estimator is not None and run.teacher is not None:
            key = scores_key(run.teacher, run.selection.estimator)
            if key not in jobs and not cache.path(key).is_file():
                jobs[key] = ScoreJob(run.teacher, run.selection.estimator)
    return list(jobs.values())


def _wave(executor: Executor, jobs: Sequence[Job], factory: WorkerFactory) -> Iterator[RunOutcome]:
    """A preparatory wave: every job must succeed, or no student trains."""
    failed = []
    for outcome in executor.run(jobs, factory) if jobs else ():
        yield outcome
        if outcome.status == "failed":
            failed.append(outcome)
    if failed:
        raise KdbenchError(f"{failed[0].label} failed ({failed[0].error}); no student was trained"
                           + (f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""))


def execute_plan(plan: Plan, options: RunOptions, executor: Executor) -> Iterator[RunOutcome]:
    """Teachers, then scores, then every run, each wave through ``executor``; outcomes as they arrive."""
    factory = WorkerFactory(options, plan.suite.plugin_files)
    todo = runs_to_do(plan, options)
    external = [t for t in teachers_of(todo) if t.checkpoint is not None]
    if external:
        checker = factory()
        for tspec in external:
            checker.teachers.get(tspec)
    yield from _wave(executor, teacher_jobs(todo, options, plan.suite.name), factory)
    yield from _wave(executor, score_jobs(todo, options), factory)
    store = RunStore(options.runs_root)
    for outcome in executor.run([RunJob(spec) for spec in plan.runs], factory):
        if outcome.kind == "run" and outcome.status == "failed":
            outcome = _note_failure(store, plan, outcome)
        yield outcome


def _note_failure(store: RunStore, plan: Plan, outcome: RunOutcome) -> RunOutcome:
    """The failed run's outcome, saying where its failure record (and traceback) is. A run whose process died
    wrote no failure record itself: write it, so the next run retries it."""
    spec = next(s for s in plan.runs if s.key == outcome.key)
    if not store.failure_path(spec).is_file():
        store.write_failure(spec, FailureRecord(error=outcome.error or "the worker process died", spec=spec,
                                                at=time.time()))
    return replace(outcome, detail=failure_detail(store, spec))
