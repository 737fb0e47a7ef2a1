"""The one way to hear about training: a list of callbacks the engine calls at start, each step, each
epoch's end and the finish.

Progress display, resume checkpoints, a teacher's kept checkpoints, the Optuna pruner and the
experiment-tracker loggers are all callbacks; the engine calls them in list order, so a pruned epoch is
still shown and logged by the callbacks before the pruner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from kdbench.train.outcome import EpochMetrics


class StopTraining(Exception):  # a signal, not an error: hence no "Error" suffix
    """Raised by a callback (a pruner) to stop a run early: not a failure, and no record is written."""


@dataclass(frozen=True)
class TrainingStart:
    """What a run is about to do: ``first_epoch`` > 1 when it resumes."""

    label: str
    epochs: int
    steps_per_epoch: int
    first_epoch: int


@dataclass(frozen=True)
class EpochEnd:
    """An epoch just evaluated: its metrics and the student as it stands (to keep a checkpoint of it)."""

    metrics: EpochMetrics
    student: nn.Module


class Callback:
    """Every hook does nothing: a callback overrides the ones it needs."""

    def start(self, run: TrainingStart) -> None:
        pass

    def step(self) -> None:
        pass

    def epoch_end(self, end: EpochEnd) -> None:
        pass

    def finish(self) -> None:
        pass


class Callbacks(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = tuple(callbacks)

    def start(self, run: TrainingStart) -> None:
        for callback in self.callbacks:
            callback.start(run)

    def step(self) -> None:
        for callback in self.callbacks:
            callback.step()

    def epoch_end(self, end: EpochEnd) -> None:
        for callback in self.callbacks:
            callback.epoch_end(end)

    def finish(self) -> None:
        for callback in self.callbacks:
            callback.finish()
