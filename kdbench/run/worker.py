"""One run, from spec to record: what an executor runs in each process.

A worker rebuilds the registry from the spec's plugin files and looks everything up by name, so only
plain data (``RunSpec``, ``RunOptions``) ever crosses a process boundary. It composes small parts:
``Components`` (registry, device, datasets), ``Teachers``, ``Scorer`` and ``build_supervision`` for
Data Selection and Label Revision, the engine, and the run store, whose ``is_done`` rule decides what
is skipped.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from kdbench.contracts import DistillationMethod, PairInfo
from kdbench.errors import KdbenchError
from kdbench.plan.spec import RunSpec
from kdbench.run.components import Components, seed_everything
from kdbench.run.distributed import train_on_ranks
from kdbench.run.environment import environment, git_revision
from kdbench.run.loggers import RunLoggers, run_info
from kdbench.run.options import RunOptions
from kdbench.run.progress import progress_display
from kdbench.run.scoring import Scorer
from kdbench.run.supervision import build_supervision
from kdbench.run.teacher_outputs import ServedLogits, TeacherOutputs
from kdbench.run.teachers import LoadedTeacher, Teachers, epoch_records
from kdbench.store import (
    FailureRecord,
    RunRecord,
    RunStore,
    ScoreCache,
    SelectionRecord,
    TeacherOutputStore,
    TeacherStore,
)
from kdbench.store.files import read_json
from kdbench.train.callbacks import Callback, StopTraining
from kdbench.train.context import build_method_context
from kdbench.train.distributed import Shard
from kdbench.train.engine import EngineConfig, TrainingDiverged, train
from kdbench.train.outcome import TrainOutcome
from kdbench.train.selection import training_subset
from kdbench.train.sources import AnyDataset
from kdbench.train.supervision import Supervision


@dataclass
class RunOutcome:
    """What became of one job: finished now, skipped (done before), or failed. ``kind`` says which job: a
    student ``run`` (with its record), a ``teacher`` trained or a training set ``scores``d (``detail``)."""

    key: str
    label: str
    pair: str
    seed: int | None
    status: str  # "finished" | "skipped" | "failed" | "stopped" (by an epoch observer: a pruned trial)
    record: RunRecord | None = None
    error: str | None = None
    kind: str = "run"
    detail: str = ""

    @classmethod
    def of(cls, spec: RunSpec, status: str, record: RunRecord | None = None, error: str | None = None) -> RunOutcome:
        return cls(spec.key, spec.label, spec.pair, spec.seed, status, record, error)


class Worker:
    """Executes specs in one process; keeps loaded datasets and teachers for the runs it executes."""

    def __init__(self, options: RunOptions, plugin_files: tuple[str, ...] = ()) -> None:
        self.options, self.plugin_files = options, tuple(plugin_files)
        if options.threads:
            torch.set_num_threads(options.threads)
        self.components = Components(options, plugin_files)
        self.store = RunStore(options.runs_root)
        self.teachers = Teachers(self.components, TeacherStore(options.home_path), options.quiet)
        self.scorer = Scorer(self.components, self.teachers, ScoreCache(options.home_path))
        self.teacher_outputs = TeacherOutputs(self.components, TeacherOutputStore(options.home_path), options.quiet)

    def run(self, spec: RunSpec, callbacks: Sequence[Callback] = ()) -> RunOutcome:
        """Train ``spec`` unless it is done. ``callbacks`` hear every epoch after the progress display and the
        loggers; one may raise ``StopTraining`` (a pruner): the run then ends "stopped", with no record."""
        if not self.options.force and (done := self.store.finished(spec)) is not None:
            return RunOutcome.of(spec, "skipped", done)
        with self.store.lock(spec):  # another process may be training this run: wait, then reuse it
            if not self.options.force and (done := self.store.finished(spec)) is not None:
                return RunOutcome.of(spec, "skipped", done)
            return self._train_and_store(spec, callbacks)

    def _train_and_store(self, spec: RunSpec, callbacks: Sequence[Callback]) -> RunOutcome:
        try:
            record = self._train(spec, callbacks)
        except StopTraining as stop:
            return RunOutcome.of(spec, "stopped", error=str(stop))
        except KdbenchError:
            raise
        except Exception as exc:  # NaN loss, or a bug in a method or model: record it, go on with the others
            failure = FailureRecord(
                error=f"{type(exc).__name__}: {exc}",
                traceback=None if isinstance(exc, TrainingDiverged) else traceback.format_exc(),
                spec=spec,
                at=time.time(),
            )
            self.store.write_failure(spec, failure)
            return RunOutcome.of(spec, "failed", error=failure.error)
        self.store.write_record(spec, record)
        return RunOutcome.of(spec, "finished", record)

    def _train(self, spec: RunSpec, callbacks: Sequence[Callback] = ()) -> RunRecord:
        """Train in this process, or on ``processes`` DDP ranks (the teacher and the scores made here first);
        the loggers see every epoch and the record, and never change either."""
        needs, supervision, selection = self._supervised(spec)
        processes = self.options.nproc or spec.recipe.devices
        refs, registry = self.options.loggers, self.components.registry
        with RunLoggers.open(refs, registry, self.options.runs_root, run_info(spec, None), start=False) as logs:
            if processes > 1:
                if callbacks:
                    raise KdbenchError("a run on several processes cannot report to an epoch observer (a pruned "
                                       "trial): tune with devices: 1")
                logs.start()  # the ranks' epochs reach the loggers with the record
                factory = WorkerFactory(self.options, self.plugin_files)
                outcome, served = train_on_ranks(factory, self.options, spec, processes)
            else:
                outcome, served = self._train_here(spec, needs, Shard(), supervision, logs, callbacks)
            record = self._record(spec, outcome, needs.teacher, selection, served, processes)
            logs.finish(record)
        return record

    def train_shard(self, spec: RunSpec, shard: Shard) -> tuple[TrainOutcome, ServedLogits]:
        """Train ``spec`` as rank ``shard.rank`` of ``shard.world``: the rank builds the run's supervision
        itself, from the scores its owner cached."""
        needs, supervision, _ = self._supervised(spec)
        return self._train_here(spec, needs, shard, supervision)

    def _supervised(self, spec: RunSpec) -> tuple[_RunNeeds, Supervision, SelectionRecord | None]:
        """The run's data, teacher and supervision; with ``mode: drop``, the data without the removed samples."""
        needs = self._needs(spec)
        built = build_supervision(spec, self.components.registry, self.scorer, needs.data.num_train,
                                  needs.data.train_flipped)
        if built.keep is not None:
            needs = replace(needs, data=training_subset(needs.data, built.keep))
        return needs, built.supervision, built.selection

    def _needs(self, spec: RunSpec) -> _RunNeeds:
        data = self.components.dataset(spec.dataset)
        teacher = self.teachers.get(spec.teacher, spec.suite) if spec.teacher is not None else None
        return _RunNeeds(data, teacher)

    def _train_here(self, spec: RunSpec, needs: _RunNeeds, shard: Shard, supervision: Supervision,
                    logs: RunLoggers | None = None, callbacks: Sequence[Callback] = ()
                    ) -> tuple[TrainOutcome, ServedLogits]:
        """The engine on this process's share of the run (all of it with one process). ``logs`` are started
        once the run knows where its teacher logits come from, and hear every epoch before ``callbacks``."""
        data, teacher = needs.data, needs.teacher
        seed_everything(spec.seed)
        student = self.components.model(spec.student, data.num_classes)
        method: DistillationMethod = self.components.registry.get("method", spec.method.name).factory(
            **spec.method.params
        )
        pair = PairInfo(spec.student, spec.teacher.arch if spec.teacher else None)
        method.setup(build_method_context(method, student, teacher.model if teacher else None, data, pair,
                                          spec.recipe))
        served = self.teacher_outputs.for_run(spec, method, teacher.model if teacher else None, data)
        if method.needs_strong_view and served.record is not None:  # no table holds a strong view: it runs live
            note = served.record.reason + "; strong view: live teacher"
            served = replace(served, record=served.record.model_copy(update={"reason": note}))
        config = EngineConfig(recipe=spec.recipe, seed=spec.seed, device=self.components.device,
                              eval_batch_size=self.options.eval_batch_size,
                              mixed_precision=self.options.mixed_precision,
                              channels_last=self.options.channels_last,
                              checkpoint_every=self.options.checkpoint_every,
                              loader_workers=self.options.loader_workers, shard=shard,
                              label=f"{spec.label} {spec.pair} seed {spec.seed}")
        hear = [progress_display(self.options.quiet, validation=self.options.validation_progress)]
        if logs is not None:
            logs.start(teacher_cache=served.record.used if served.record else None)
            hear.append(logs.callback())
        outcome = train(student, method, data, config, teacher=teacher.model if teacher else None,
                        teacher_logits=served.source, supervision=supervision,
                        checkpointer=self.store.resume_file(spec), callbacks=[*hear, *callbacks])
        return outcome, replace(served, source=None)  # what the record needs; the table stays with the rank

    def _record(self, spec: RunSpec, outcome: TrainOutcome, teacher: LoadedTeacher | None,
                selection: SelectionRecord | None, served: ServedLogits, processes: int) -> RunRecord:
        best = outcome.best
        return RunRecord(
            key=spec.key,
            suite=spec.suite,
            label=spec.label,
            method=spec.method.name,
            student=spec.student,
            teacher=spec.teacher.arch if spec.teacher else None,
            pair=spec.pair,
            seed=spec.seed,
            dataset=spec.dataset.name,
            spec=spec,
            last_top1=outcome.last_top1,
            best_top1=best.test_top1,
            best_epoch=best.epoch,
            last_top5=outcome.epochs[-1].test_top5,
            teacher_top1=teacher.record.test_top1 if teacher else None,
            teacher_key=spec.teacher.key if spec.teacher else None,
            selection=selection,
            metrics=epoch_records(outcome),
            wall_time_s=outcome.wall_time_s,
            train_images_per_s=outcome.train_images_per_s,
            environment=environment(self.components.device, self.options.executor, self.options.channels_last),
            git_revision=git_revision(),
            finished_at=time.time(),
            teacher_cache=served.record,
            compiled=spec.recipe.compile,
            processes=processes,
            flipped_train=self._flipped(spec),
            evaluated_head="method" if self._method_class(spec).provides_head else "student",
        )

    def _method_class(self, spec: RunSpec) -> type[DistillationMethod]:
        factory: type[DistillationMethod] = self.components.registry.get("method", spec.method.name).factory
        return factory

    def _flipped(self, spec: RunSpec) -> list[int] | None:
        """The training indices label noise flipped, kept with the record so anything can be scored on them."""
        mask = self.components.dataset(spec.dataset).train_flipped
        return torch.nonzero(mask).flatten().tolist() if mask is not None else None


def failure_detail(store: RunStore, spec: RunSpec) -> str:
    """Where a failed run's failure record is, for its progress line: the traceback when one was saved (a NaN
    loss saves none), so that a failure seen in the output leads straight to its cause."""
    path = store.failure_path(spec)
    saved = read_json(path)
    has_traceback = isinstance(saved, dict) and bool(saved.get("traceback"))
    return f"{'traceback' if has_traceback else 'failure record'} in {path}"


@dataclass(frozen=True)
class _RunNeeds:
    """What a run takes from the worker's caches: its dataset and its loaded teacher."""

    data: AnyDataset
    teacher: LoadedTeacher | None


@dataclass(frozen=True)
class WorkerFactory:
    """Picklable recipe for a Worker: what an executor ships to each process. An executor may pin the
    process to a device and give it a number of torch threads."""

    options: RunOptions
    plugin_files: tuple[str, ...] = ()

    def __call__(self, device: str | None = None, threads: int | None = None, quiet: bool | None = None) -> Worker:
        options = replace(self.options, device=device or self.options.device, threads=threads or self.options.threads,
                          quiet=self.options.quiet if quiet is None else quiet)
        return Worker(options, self.plugin_files)
