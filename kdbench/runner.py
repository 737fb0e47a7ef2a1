"""From a plan to records: make sure teachers exist, then execute every run not already finished.

``Worker`` is what an executor runs in each process: it rebuilds the registry from the spec's plugin
files and looks everything up by name, so only plain data (``RunSpec``, ``RunOptions``) ever crosses a
process boundary.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kdbench.data import ImageDataset
from kdbench.engine import (
    EngineConfig,
    TrainingDiverged,
    build_method_context,
    evaluate,
    resolve_device,
    train,
)
from kdbench.environment import environment, git_revision
from kdbench.errors import KdbenchError
from kdbench.methods import DistillationMethod, PairInfo
from kdbench.plugins import load_registry
from kdbench.progress import make_reporter
from kdbench.recipe import Recipe, lr_at_epoch
from kdbench.registry import Registry
from kdbench.revision import RevisionLossConfig
from kdbench.selection import ScoreCache, StoredScores, scoring_inputs, select
from kdbench.spec import ComponentRef, RunSpec, TeacherSpec, content_key
from kdbench.store import RESUME, ResultStore, atomic_torch_save
from kdbench.suite import Plan
from kdbench.supervision import Supervision
from kdbench.teachers import TeacherStore, kdbench_home, load_checkpoint

TEACHER_CHECKPOINTS = 4  # checkpoints kept along a harness-trained teacher's training, for TracIn


def checkpoint_epochs(epochs: int, count: int) -> set[int]:
    """``count`` evenly spaced epochs ending at the last one (fewer when there are fewer epochs)."""
    return {max(1, round(epochs * k / count)) for k in range(1, count + 1)}


@dataclass(frozen=True)
class RunOptions:
    """Execution settings: where things go and run. Not part of any key."""

    results_root: str = "results"
    data_root: str | None = None  # default: $KDBENCH_HOME/data
    download: bool = False
    device: str = "auto"
    home: str | None = None  # default: $KDBENCH_HOME
    force: bool = False
    quiet: bool = False
    checkpoint_every: int = 10
    extra_plugin_files: tuple[str, ...] = ()

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else kdbench_home()

    @property
    def data_path(self) -> Path:
        return Path(self.data_root) if self.data_root else self.home_path / "data"


@dataclass
class RunOutcome:
    key: str
    label: str
    pair: str
    seed: int
    status: str  # "finished" | "skipped" | "failed"
    last_top1: float | None = None
    best_top1: float | None = None
    error: str | None = None
    record: dict[str, Any] | None = field(default=None, repr=False)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class Worker:
    """Executes specs in one process; caches loaded datasets and teachers for the runs it executes."""

    def __init__(self, options: RunOptions, plugin_files: tuple[str, ...] = ()) -> None:
        self.options = options
        self.registry: Registry = load_registry(tuple(plugin_files) + options.extra_plugin_files)
        self.device = resolve_device(options.device)
        self.store = ResultStore(options.results_root)
        self.teachers = TeacherStore(options.home_path)
        self._datasets: dict[str, ImageDataset] = {}
        self._teachers: dict[str, tuple[torch.nn.Module, dict[str, Any]]] = {}

    # -- components -----------------------------------------------------------------------------
    def dataset(self, ref: ComponentRef) -> ImageDataset:
        key = content_key(ref.identity())
        if key not in self._datasets:
            comp = self.registry.get("dataset", ref.name)
            data = comp.create(ref.params, root=self.options.data_path, download=self.options.download)
            self._datasets[key] = data.to(self.device)
        return self._datasets[key]

    def model(self, arch: str, num_classes: int) -> torch.nn.Module:
        return self.registry.get("model", arch).create(num_classes=num_classes)

    # -- teachers -------------------------------------------------------------------------------
    def teacher(self, spec: TeacherSpec) -> tuple[torch.nn.Module, dict[str, Any]]:
        """The teacher model (on the device, eval) and its record, training it first if needed."""
        if spec.key not in self._teachers:
            self._teachers[spec.key] = self._obtain_teacher(spec)
        return self._teachers[spec.key]

    def _obtain_teacher(self, spec: TeacherSpec) -> tuple[torch.nn.Module, dict[str, Any]]:
        data = self.dataset(spec.dataset)
        if spec.checkpoint is None and self.teachers.record(spec) is None:
            return self.train_teacher(spec, data)
        model = self.model(spec.arch, data.num_classes)
        if spec.checkpoint is not None:
            load_checkpoint(model, spec.checkpoint, spec.arch)
            model.to(self.device)
            top1 = evaluate(model, data.test_images, data.test_labels, data.mean, data.std)
            return model.eval(), {"test_top1": top1, "checkpoint": spec.checkpoint, "key": spec.key}
        load_checkpoint(model, self.teachers.model_path(spec), spec.arch)
        return model.to(self.device).eval(), self.teachers.record(spec)

    def train_teacher(self, spec: TeacherSpec, data: ImageDataset) -> tuple[torch.nn.Module, dict[str, Any]]:
        """Train with plain CE under the teacher recipe, store it by content, return it with its record."""
        seed_everything(spec.seed)
        model = self.model(spec.arch, data.num_classes)
        method = self.registry.get("method", "ce").create()
        method.setup(build_method_context(method, model, None, data, PairInfo(spec.arch, None), spec.recipe))
        config = EngineConfig(recipe=spec.recipe, seed=spec.seed, device=self.device,
                              checkpoint_every=0, label=f"teacher {spec.arch}")
        directory = self.teachers.directory(spec)
        keep = checkpoint_epochs(spec.recipe["epochs"], TEACHER_CHECKPOINTS)
        saved: list[dict[str, Any]] = []

        def save_checkpoint(epoch: int, student: torch.nn.Module) -> None:
            """TracIn needs the teacher at several points of its training (METHODS.md §6a)."""
            if epoch in keep:
                name = f"checkpoints/epoch_{epoch:04d}.pt"
                atomic_torch_save({"model": student.state_dict(), "epoch": epoch}, directory / name)
                lr = lr_at_epoch(spec.recipe["lr"], epoch, spec.recipe["milestones"], spec.recipe["lr_decay"])
                saved.append({"epoch": epoch, "lr": lr, "file": name})

        outcome = train(model, method, data, config, reporter=make_reporter(self.options.quiet),
                        on_epoch_end=save_checkpoint)
        record = {
            "arch": spec.arch,
            "checkpoints": saved,
            "test_top1": outcome.last_top1,
            "best_top1": outcome.best["test_top1"],
            "metrics": outcome.epochs,
            "wall_time_s": outcome.wall_time_s,
            "environment": environment(self.device),
            "git_revision": git_revision(),
        }
        self.teachers.save(spec, model, record)
        return model.eval(), self.teachers.record(spec) or record

    # -- data selection ---------------------------------------------------------------------------
    def scores(self, teacher_spec: TeacherSpec, estimator: ComponentRef) -> StoredScores:
        """Per-sample scores of the training set by ``estimator`` on the teacher (cached by content)."""
        comp = self.registry.get("estimator", estimator.name)
        instance = comp.factory(**estimator.params)
        teacher, record = self.teacher(teacher_spec)
        data = self.dataset(teacher_spec.dataset)

        def make_inputs():
            checkpoints = []
            if comp.factory.needs_checkpoints:
                for ckpt in record.get("checkpoints", []):
                    model = self.model(teacher_spec.arch, data.num_classes)
                    load_checkpoint(model, self.teachers.directory(teacher_spec) / ckpt["file"], teacher_spec.arch)
                    checkpoints.append((ckpt["epoch"], ckpt["lr"], model.to(self.device)))
            decay = teacher_spec.recipe.get("weight_decay", Recipe().weight_decay)
            return scoring_inputs(teacher, data, decay, checkpoints)

        parts = {"teacher": teacher_spec.key, "dataset": teacher_spec.dataset.identity(),
                 "estimator": estimator.identity()}
        return ScoreCache(self.options.home_path).get_or_compute(parts, instance, make_inputs)

    def supervision(self, spec: RunSpec, num_train: int) -> tuple[Supervision, dict[str, Any] | None]:
        """Data Selection mask and Label Revision of a run, and what to record about the split."""
        mask, info = None, None
        if spec.selection is not None:
            sel = spec.selection
            stored = None
            if sel["estimator"] is not None:
                stored = self.scores(spec.teacher, ComponentRef(**sel["estimator"]))
            mask = select(stored.values if stored else None, sel["fraction"], sel["order"],
                          sel.get("seed", spec.seed), num_train)
            info = {"teacher_samples": int(mask.sum()), "samples": num_train}
            if stored is not None:
                info.update(scores_key=stored.key, estimator_info=stored.info, score_seconds=stored.seconds,
                            teacher_correct_in_dt=float(stored.teacher_correct[mask].double().mean()),
                            teacher_correct_in_ds=float(stored.teacher_correct[~mask].double().mean())
                            if (~mask).any() else None)
        revision, config = None, RevisionLossConfig()
        if spec.revision is not None:
            rev = spec.revision
            revision = self.registry.get("revision", rev["name"]).factory(**rev["params"])
            config = RevisionLossConfig(rev["lambda1"], rev["lambda2"], rev["reduction"], rev["temperature"])
        return Supervision(mask, revision, config), info

    # -- runs -----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunOutcome:
        base = RunOutcome(spec.key, spec.label, spec.pair, spec.seed, "skipped")
        if not self.options.force:
            done = self.store.record(spec)
            if done is None and (done := self.store.record_elsewhere(spec)) is not None:
                done = {**done, "suite": spec.suite, "label": spec.label, "spec": spec.to_dict()}
                self.store.write_record(spec, done)
            if done is not None:
                return _outcome(base, done, "skipped")
        try:
            record = self._train(spec)
        except TrainingDiverged as exc:
            failure = {"status": "failed", "error": f"TrainingDiverged: {exc}", "spec": spec.to_dict(),
                       "at": time.time()}
            self.store.write_failure(spec, failure)
            return RunOutcome(spec.key, spec.label, spec.pair, spec.seed, "failed", error=failure["error"])
        except KdbenchError:
            raise
        except Exception as exc:  # a bug in a method or model: record it, keep going with the others
            failure = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(), "spec": spec.to_dict(), "at": time.time()}
            self.store.write_failure(spec, failure)
            return RunOutcome(spec.key, spec.label, spec.pair, spec.seed, "failed", error=failure["error"])
        self.store.write_record(spec, record)
        return _outcome(base, record, "finished")

    def _train(self, spec: RunSpec) -> dict[str, Any]:
        data = self.dataset(spec.dataset)
        comp = self.registry.get("method", spec.method.name)
        teacher, teacher_record = (None, None)
        if spec.teacher is not None:
            teacher, teacher_record = self.teacher(spec.teacher)
        seed_everything(spec.seed)
        student = self.model(spec.student, data.num_classes)
        method: DistillationMethod = comp.factory(**spec.method.params)
        pair = PairInfo(spec.student, spec.teacher.arch if spec.teacher else None)
        method.setup(build_method_context(method, student, teacher, data, pair, spec.recipe))
        config = EngineConfig(recipe=spec.recipe, seed=spec.seed, device=self.device,
                              checkpoint_every=self.options.checkpoint_every,
                              label=f"{spec.label} {spec.pair} seed {spec.seed}")
        supervision, selection_info = self.supervision(spec, data.num_train)
        resume = self.store.run_dir(spec) / RESUME
        outcome = train(student, method, data, config, teacher=teacher, supervision=supervision,
                        resume_path=resume, reporter=make_reporter(self.options.quiet))
        best = outcome.best
        return {
            "status": "finished",
            "key": spec.key,
            "suite": spec.suite,
            "label": spec.label,
            "method": spec.method.name,
            "student": spec.student,
            "teacher": spec.teacher.arch if spec.teacher else None,
            "pair": spec.pair,
            "seed": spec.seed,
            "dataset": spec.dataset.name,
            "spec": spec.to_dict(),
            "last_top1": outcome.last_top1,
            "best_top1": best["test_top1"],
            "best_epoch": best["epoch"],
            "teacher_top1": teacher_record["test_top1"] if teacher_record else None,
            "teacher_key": spec.teacher.key if spec.teacher else None,
            "selection": selection_info,
            "metrics": outcome.epochs,
            "wall_time_s": outcome.wall_time_s,
            "train_images_per_s": outcome.train_images_per_s,
            "environment": environment(self.device),
            "git_revision": git_revision(),
            "finished_at": time.time(),
        }


def _outcome(base: RunOutcome, record: dict[str, Any], status: str) -> RunOutcome:
    base.status = status
    base.last_top1, base.best_top1, base.record = record["last_top1"], record["best_top1"], record
    return base


@dataclass(frozen=True)
class WorkerFactory:
    """Picklable recipe for a Worker: what an executor ships to each process."""

    options: RunOptions
    plugin_files: tuple[str, ...] = ()

    def __call__(self) -> Worker:
        return Worker(self.options, self.plugin_files)


def teachers_of(runs: list[RunSpec]) -> list[TeacherSpec]:
    unique: dict[str, TeacherSpec] = {}
    for run in runs:
        if run.teacher is not None:
            unique.setdefault(run.teacher.key, run.teacher)
    return list(unique.values())


def execute_plan(plan: Plan, options: RunOptions, executor: Any) -> Iterator[RunOutcome]:
    """Teachers first, then every run through the executor.

    Every teacher of a run still to do is obtained here, in this process, before any student
    trains: harness-trained teachers are trained once, and external checkpoints are loaded strictly,
    so a checkpoint that does not fit fails the suite before any work rather than half way.
    """
    factory = WorkerFactory(options, plan.suite.plugin_files)
    store = ResultStore(options.results_root)
    todo = [r for r in plan.runs if options.force or (store.record(r) or store.record_elsewhere(r)) is None]
    if teachers_of(todo):
        worker = factory()
        for tspec in teachers_of(todo):
            worker.teacher(tspec)
    yield from executor.run(plan.runs, factory)
