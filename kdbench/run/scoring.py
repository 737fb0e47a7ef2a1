"""Data-value scores of a teacher's training set, computed once and cached (docs/methods.md §6a).

The long part on a CPU is the teacher's passes over the training set (and over its validation split, and
once per kept checkpoint for TracIn): they show progress with an ETA like training does, one step per
batch each model runs. The estimator's own computation that follows reports its seconds in the scores."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from kdbench.contracts import DataValueEstimator, StreamedDataset
from kdbench.errors import KdbenchError
from kdbench.plan.recipe import Recipe
from kdbench.plan.spec import ComponentRef, TeacherSpec
from kdbench.registry import Component
from kdbench.run.components import Components
from kdbench.run.progress import progress_display
from kdbench.run.teachers import Teachers
from kdbench.store import DetectionRecord, ScoreCache, StoredScores, scores_key
from kdbench.train.callbacks import Callback, TrainingStart
from kdbench.train.label_noise import detect_flipped
from kdbench.train.scoring import scoring_inputs
from kdbench.train.sources import AnyDataset


def detection_of(estimator: Component[type[DataValueEstimator]], stored: StoredScores,
                 flipped: torch.Tensor) -> DetectionRecord:
    """How well ``stored`` scores flag the ``flipped`` training labels, read at the end of the score the
    estimator calls suspicious (docs/methods.md §12)."""
    figures = detect_flipped(stored.values, flipped, estimator.factory.suspect_when)
    return DetectionRecord(estimator=estimator.name, auroc=figures.auroc, precision_at_k=figures.precision_at_k,
                           k=figures.k, suspect_when=figures.suspect_when, samples=int(stored.values.shape[0]),
                           seconds=stored.seconds, found_at_10=figures.found_at_10)


class Scorer:
    """Scores from the cache, or from the estimator applied to the teacher's view of the data."""

    def __init__(self, components: Components, teachers: Teachers, cache: ScoreCache) -> None:
        self.components = components
        self.teachers = teachers
        self.cache = cache

    def scores(self, teacher_spec: TeacherSpec, estimator: ComponentRef) -> StoredScores:
        key = scores_key(teacher_spec, estimator)
        cached = self.cache.load(key)
        if cached is not None:
            return cached
        with self.cache.lock(key):  # another process may be scoring: wait, then reuse its scores
            cached = self.cache.load(key)
            return cached if cached is not None else self._compute(teacher_spec, estimator, key)

    def _compute(self, teacher_spec: TeacherSpec, estimator: ComponentRef, key: str) -> StoredScores:
        comp = self.components.registry.get("estimator", estimator.name)
        instance: DataValueEstimator = comp.factory(**estimator.params)
        teacher = self.teachers.get(teacher_spec)
        data = self.components.dataset(teacher_spec.dataset)
        needs_checkpoints = comp.factory.needs_checkpoints
        checkpoints = self.teachers.checkpoints(teacher_spec, data.num_classes) if needs_checkpoints else []
        # An external checkpoint's recipe is unknown: the standard weight decay damps its influence Hessian.
        decay = (teacher_spec.recipe or Recipe().resolved(teacher_spec.arch)).weight_decay
        options = self.components.options
        models = [teacher.model, *(model for _, _, model in checkpoints)]
        progress = progress_display(options.quiet)
        progress.start(TrainingStart(f"{estimator.name} scores on {teacher_spec.arch}: teacher outputs", 1,
                                     scoring_batches(data, len(models), options.eval_batch_size), 1))
        try:
            with _counting_batches(models, progress):
                inputs = scoring_inputs(teacher.model, data, decay, checkpoints, batch_size=options.eval_batch_size,
                                        loader_workers=options.loader_workers, network=comp.factory.needs_network)
        finally:
            progress.finish()
        start = time.perf_counter()
        scores = instance.score(inputs)
        seconds = time.perf_counter() - start
        values = scores.values.double().cpu()
        if values.shape != (inputs.train.num_samples,) or not torch.isfinite(values).all():
            raise KdbenchError(f"estimator {estimator.name!r} returned invalid scores "
                               f"(shape {tuple(values.shape)}, finite: {bool(torch.isfinite(values).all())})")
        stored = StoredScores(
            values=values,
            info=scores.info,
            higher_to_teacher=type(instance).higher_to_teacher,
            labels=inputs.train.labels,
            teacher_correct=inputs.train.logits.argmax(1) == inputs.train.labels,
            seconds=seconds,
            key=key,
        )
        self.cache.save(stored)
        return stored


def scoring_batches(data: AnyDataset, models: int, batch_size: int) -> int:
    """The batches the teacher passes of scoring run: the training split once per model (the teacher and its
    kept checkpoints), the validation split once."""
    def size(split: str) -> int:
        return data.size(split) if isinstance(data, StreamedDataset) else int(data.split(split)[0].shape[0])

    return models * math.ceil(size("train") / batch_size) + math.ceil(size("val") / batch_size)


@contextmanager
def _counting_batches(models: list[nn.Module], progress: Callback) -> Iterator[None]:
    """Each forward call of ``models`` (one batch) is a step of ``progress``; the hooks go away on exit."""
    handles = [model.register_forward_hook(lambda *_: progress.step()) for model in models]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
