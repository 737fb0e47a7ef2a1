"""Optuna studies over a suite's method entries: trials are ordinary runs, run by any executor.

Each trial is a :class:`TrialJob`, plain data an executor carries to a worker like a run: the worker opens
the study in its storage, asks for a trial, trains the trial's run (or finds it done in the run store),
reports the validation top-1 of every epoch so that the pruner may stop it, and tells the study the
result. Several workers can do so at once against one storage (``--executor pool|submitit|ray``).
Studies live in an Optuna storage: SQLite under the run store by default, any RDB URL, or a journal file
(``journal:PATH``) for a shared filesystem without a database server.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kdbench.contracts import Executor, require
from kdbench.errors import KdbenchError
from kdbench.plan.spec import RunSpec
from kdbench.plan.suite_file import Suite, load_suite
from kdbench.plan.tune import Study, studies, trial_spec
from kdbench.plan.tune_file import Distribution
from kdbench.run.options import RunOptions
from kdbench.run.worker import RunOutcome, Worker, WorkerFactory, failure_detail
from kdbench.store import RunRecord
from kdbench.train.callbacks import Callback, EpochEnd, StopTraining

FINISHED = ("COMPLETE", "PRUNED")


def optuna_module() -> Any:
    optuna = require("optuna", "tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(study: Study, options: RunOptions, override: str | None = None) -> str:
    """``--storage`` over the study's ``storage:``, else a SQLite file under the run store."""
    if override or study.entry.storage:
        return override or study.entry.storage or ""
    path = Path(options.runs_root).resolve() / study.suite.name / "tune" / "studies.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL; ``journal:PATH`` is a journal file (NFS-safe, no server)."""
    optuna = optuna_module()
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # a malformed URL, a driver that is not installed, a server that is down
        raise KdbenchError(f"cannot open the Optuna storage {url!r}: {type(exc).__name__}: {exc}") from None


def make_sampler(study: Study, seed: int) -> Any:
    optuna = optuna_module()
    if study.entry.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(study: Study) -> Any:
    optuna = optuna_module()
    entry = study.entry.pruner
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    try:
        return pruners[entry.name](**entry.params)
    except (TypeError, ValueError) as exc:
        raise KdbenchError(f"{study.where('pruner')}: tune.pruner: {entry.name} with {entry.params}: {exc}") from None


def load(study: Study, url: str, sampler_seed: int) -> Any:
    """The study in its storage (created on first use), maximising validation top-1."""
    optuna = optuna_module()
    return optuna.create_study(study_name=study.name, storage=open_storage(url), direction="maximize",
                               load_if_exists=True, sampler=make_sampler(study, sampler_seed),
                               pruner=make_pruner(study))


def suggest(trial: Any, space: dict[str, Distribution], integer_paths: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The trial's value for every path of the space (over integers for the paths that set an int)."""
    values = {}
    for path, dist in space.items():
        if dist.choices is not None:
            values[path] = trial.suggest_categorical(path, dist.choices)
        elif dist.low is None or dist.high is None:
            raise ValueError(f"{path}: a range needs low and high")  # checked when the suite is read
        elif path in integer_paths:
            values[path] = trial.suggest_int(path, int(dist.low), int(dist.high), step=int(dist.step or 1),
                                             log=dist.log)
        else:
            values[path] = trial.suggest_float(path, float(dist.low), float(dist.high), step=dist.step, log=dist.log)
    return values


def objective_value(record: RunRecord, objective: str) -> float:
    """The validation top-1 a trial is judged by: its best epoch's, or its last epoch's. Never test accuracy."""
    curve = validation_curve(record.metrics, objective)
    return curve[-1]


def validation_curve(metrics: list[Any], objective: str) -> list[float]:
    """What is reported to the pruner after each epoch: validation top-1, as a running best for ``best``."""
    values = [float(m.val_top1) if m.val_top1 is not None else math.nan for m in metrics]
    if objective == "best":
        values = [max(values[: i + 1]) for i in range(len(values))]
    return values


class PruneOnValidation(Callback):
    """Reports each epoch's validation top-1 to the trial; raises ``StopTraining`` when the pruner says so."""

    def __init__(self, trial: Any, objective: str) -> None:
        self.trial, self.objective, self.best = trial, objective, -math.inf

    def epoch_end(self, end: EpochEnd) -> None:
        metrics = end.metrics
        value = validation_curve([metrics], "last")[0]
        if self.objective == "best":
            self.best = value = max(self.best, value)
        self.trial.report(value, metrics.epoch)
        if self.trial.should_prune():
            raise StopTraining(f"pruned after epoch {metrics.epoch} at validation top-1 {value:.2f}")


@dataclass(frozen=True)
class TrialJob:
    """One trial of one study: plain data an executor carries to a worker."""

    suite_path: str
    study_index: int
    storage: str
    sampler_seed: int

    @property
    def label(self) -> str:
        return f"trial of study {self.study_index} of {Path(self.suite_path).name}"

    def execute(self, worker: Worker) -> RunOutcome:
        optuna = optuna_module()
        study = studies(load_suite(self.suite_path), worker.components.registry)[self.study_index]
        optuna_study = load(study, self.storage, self.sampler_seed)
        trial = optuna_study.ask()
        values = suggest(trial, study.entry.space, study.integer_paths)
        spec = trial_spec(study, worker.components.registry, values)
        trial.set_user_attr("run_key", spec.key)
        outcome = worker.run(spec, callbacks=[PruneOnValidation(trial, study.entry.objective)])
        label = f"trial {trial.number} of {study.name}: {_short(values)}"
        if outcome.status == "stopped":
            optuna_study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return _outcome(spec, label, "finished", f"pruned: {outcome.error}")
        if outcome.record is None:
            optuna_study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return _outcome(spec, label, "failed", failure_detail(worker.store, spec), error=outcome.error)
        if outcome.status == "skipped":  # reused: its curve reaches the pruner's history all the same
            for epoch, value in zip((m.epoch for m in outcome.record.metrics),
                                    validation_curve(outcome.record.metrics, study.entry.objective), strict=True):
                trial.report(value, epoch)
        value = objective_value(outcome.record, study.entry.objective)
        optuna_study.tell(trial, value)
        reused = " (reused run)" if outcome.status == "skipped" else ""
        return _outcome(spec, label, "finished", f"validation top-1 {value:.2f}{reused}")

    def crashed(self, reason: str) -> RunOutcome:
        return RunOutcome("", self.label, "", None, "failed", error=reason, kind="trial")


def _short(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _outcome(spec: RunSpec, label: str, status: str, detail: str = "", error: str | None = None) -> RunOutcome:
    return RunOutcome(spec.key, label, spec.pair, spec.seed, status, error=error, kind="trial", detail=detail)


def prepare(study: Study, url: str, trials: int) -> tuple[Any, int]:
    """Open the study, hand the trials a killed ``kdbench tune`` left running back to the queue (their runs
    resume from their checkpoints), and say how many trials are still to run."""
    optuna = optuna_module()
    optuna_study = load(study, url, study.entry.sampler.seed)
    for trial in optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        optuna_study.enqueue_trial(trial.params, skip_if_exists=True)
    finished = sum(1 for t in optuna_study.get_trials(deepcopy=False) if t.state.name in FINISHED)
    return optuna_study, max(trials - finished, 0)


def run_study(study: Study, url: str, trials: int, options: RunOptions, executor: Executor,
              factory: WorkerFactory) -> Iterator[RunOutcome]:
    """Run the study until it holds ``trials`` finished trials, through the executor. The trials' epoch lines
    show validation top-1, what the study judges them by (``RunOptions.validation_progress``)."""
    optuna_study, todo = prepare(study, url, trials)
    first_seed = study.entry.sampler.seed + len(optuna_study.trials)
    jobs = [TrialJob(str(study.suite.path.resolve()), study.index, url, first_seed + k) for k in range(todo)]
    trial_factory = replace(factory, options=replace(factory.options, validation_progress=True))
    yield from executor.run(jobs, trial_factory)


def check_studies(suite: Suite, registry: Any) -> list[Study]:
    """The suite's studies, checked, with Optuna present (else one line naming the extra)."""
    optuna_module()
    return studies(suite, registry)
