"""The teachers a worker's runs need: trained once with plain CE and stored by content, or loaded from a
published checkpoint (strictly) and measured. Either way a run gets the model and its typed record."""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import nn

from kdbench.contracts import SCRATCH_METHOD, PairInfo
from kdbench.plan.spec import TeacherSpec
from kdbench.run.components import Components, seed_everything
from kdbench.run.environment import environment, git_revision
from kdbench.run.loggers import RunLoggers, teacher_info
from kdbench.run.progress import progress_display
from kdbench.store import EpochRecord, TeacherCheckpoint, TeacherRecord, TeacherStore, load_checkpoint
from kdbench.train.callbacks import Callback, EpochEnd
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.evaluate import split_accuracy
from kdbench.train.outcome import TrainOutcome
from kdbench.train.sources import AnyDataset

TEACHER_CHECKPOINTS = 4  # kept along a harness-trained teacher's training, for TracIn (docs/methods.md §6a)


def checkpoint_epochs(epochs: int, count: int) -> set[int]:
    """``count`` evenly spaced epochs ending at the last one (fewer when there are fewer epochs)."""
    return {max(1, round(epochs * k / count)) for k in range(1, count + 1)}


def epoch_records(outcome: TrainOutcome) -> list[EpochRecord]:
    return [EpochRecord.model_validate(m.as_dict()) for m in outcome.epochs]


@dataclass(frozen=True)
class LoadedTeacher:
    model: nn.Module  # on the worker's device, in eval mode
    record: TeacherRecord


class Teachers:
    """Teachers by spec, each obtained once per worker (trained, read from the store, or checked)."""

    def __init__(self, components: Components, store: TeacherStore, quiet: bool = False) -> None:
        self.components = components
        self.store = store
        self.quiet = quiet
        self._loaded: dict[str, LoadedTeacher] = {}

    def get(self, spec: TeacherSpec, suite: str = "") -> LoadedTeacher:
        """The teacher; ``suite`` (the one that needs it) names the loggers' group if it is trained now."""
        if spec.key not in self._loaded:
            self._loaded[spec.key] = self._obtain(spec, suite)
        return self._loaded[spec.key]

    def _obtain(self, spec: TeacherSpec, suite: str) -> LoadedTeacher:
        data = self.components.dataset(spec.dataset)
        device = self.components.device
        if spec.checkpoint is not None:
            model = self.components.model(spec.arch, data.num_classes)
            load_checkpoint(model, spec.checkpoint, spec.arch)
            model.to(device)
            measured = split_accuracy(model, data, "test", device, batch_size=self.components.options.eval_batch_size,
                                      loader_workers=self.components.options.loader_workers)
            record = TeacherRecord(key=spec.key, arch=spec.arch, test_top1=measured.top1, test_top5=measured.top5,
                                   checkpoint=spec.checkpoint)
            return LoadedTeacher(model.eval(), record)
        stored = self.store.record(spec)
        if stored is None:
            with self.store.lock(spec):  # another process may be training it: wait, then reuse it
                stored = self.store.record(spec)
                if stored is None:
                    return self.train(spec, data, suite)
        model = self.components.model(spec.arch, data.num_classes)
        load_checkpoint(model, self.store.model_path(spec), spec.arch)
        return LoadedTeacher(model.to(device).eval(), stored)

    def train(self, spec: TeacherSpec, data: AnyDataset, suite: str = "") -> LoadedTeacher:
        """Train with plain CE under the teacher recipe, keep TracIn checkpoints, store it by content; the
        command's loggers watch it as they watch student runs."""
        assert spec.recipe is not None
        seed_everything(spec.seed)
        model = self.components.model(spec.arch, data.num_classes)
        method = self.components.registry.get("method", SCRATCH_METHOD).create()
        method.setup(build_method_context(method, model, None, data, PairInfo(spec.arch, None), spec.recipe))
        config = EngineConfig(recipe=spec.recipe, seed=spec.seed, device=self.components.device,
                              eval_batch_size=self.components.options.eval_batch_size, checkpoint_every=0,
                              loader_workers=self.components.options.loader_workers,
                              channels_last=self.components.options.channels_last,
                              label=f"teacher {spec.arch}")
        keep = _KeepCheckpoints(self.store, spec)
        options = self.components.options
        with RunLoggers.open(options.loggers, self.components.registry, options.runs_root,
                             teacher_info(spec, suite)) as logs:
            outcome = train(model, method, data, config,
                            callbacks=[progress_display(self.quiet), logs.callback(), keep])
            record = self._record(spec, outcome, keep.kept)
            logs.finish(record)
        self.store.save(spec, model, record)
        return LoadedTeacher(model.eval(), record)

    def _record(self, spec: TeacherSpec, outcome: TrainOutcome, kept: list[TeacherCheckpoint]) -> TeacherRecord:
        return TeacherRecord(
            key=spec.key,
            arch=spec.arch,
            test_top1=outcome.last_top1,
            test_top5=outcome.epochs[-1].test_top5,
            best_top1=outcome.best.test_top1,
            checkpoints=kept,
            metrics=epoch_records(outcome),
            wall_time_s=outcome.wall_time_s,
            environment=environment(self.components.device, self.components.options.executor,
                                    self.components.options.channels_last),
            git_revision=git_revision(),
            spec=spec,
            saved_at=time.time(),
        )

    def checkpoints(self, spec: TeacherSpec, num_classes: int) -> list[tuple[int, float, nn.Module]]:
        """(epoch, lr, model) of every checkpoint kept while the harness trained this teacher."""
        out = []
        for ckpt in self.get(spec).record.checkpoints:
            model = self.components.model(spec.arch, num_classes)
            load_checkpoint(model, self.store.checkpoint_path(spec, ckpt.file), spec.arch)
            out.append((ckpt.epoch, ckpt.lr, model.to(self.components.device)))
        return out


class _KeepCheckpoints(Callback):
    """Saves the teacher at ``TEACHER_CHECKPOINTS`` evenly spaced epochs, for TracIn."""

    def __init__(self, store: TeacherStore, spec: TeacherSpec) -> None:
        assert spec.recipe is not None
        self.store, self.spec = store, spec
        self.epochs = checkpoint_epochs(spec.recipe.epochs, TEACHER_CHECKPOINTS)
        self.kept: list[TeacherCheckpoint] = []

    def epoch_end(self, end: EpochEnd) -> None:
        epoch, recipe = end.metrics.epoch, self.spec.recipe
        if epoch in self.epochs and recipe is not None:
            name = self.store.save_checkpoint(self.spec, epoch, end.student)
            self.kept.append(TeacherCheckpoint(epoch=epoch, lr=recipe.lr_at(epoch), file=name))
