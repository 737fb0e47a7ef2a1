"""Progress display for training runs: a rich bar on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from kdbench.train.engine import EpochMetrics, Reporter, SilentReporter


class RichReporter:
    """Implements ``kdbench.train.engine.Reporter``: a bar over all steps of a run, with the latest metrics."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self._label = ""
        self._epochs = 0

    def start(self, label: str, epochs: int, steps_per_epoch: int, first_epoch: int) -> None:
        self._label, self._epochs = label, epochs
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self._progress.start()
        total = epochs * steps_per_epoch
        self._task = self._progress.add_task(
            label, total=total, completed=(first_epoch - 1) * steps_per_epoch, status=""
        )

    def step(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def epoch_end(self, metrics: EpochMetrics) -> None:
        m = metrics
        status = f"epoch {m.epoch}/{self._epochs} loss {m.train_loss:.3f} top1 {m.test_top1:.2f}"
        if self.console.is_terminal and self._progress is not None:
            self._progress.update(self._task, status=status)
        else:  # logs (SLURM, CI, nohup): one plain line per epoch instead of a bar
            self.console.print(f"{self._label}: {status}", markup=False, highlight=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def make_reporter(quiet: bool) -> Reporter:
    return SilentReporter() if quiet or not sys.stderr else RichReporter()



class ObservedReporter:
    """A reporter that also shows every epoch's metrics to an observer (a pruner may stop the run)."""

    def __init__(self, inner: Reporter, observer: Callable[[EpochMetrics], None]) -> None:
        self.inner, self.observer = inner, observer

    def start(self, label: str, epochs: int, steps_per_epoch: int, first_epoch: int) -> None:
        self.inner.start(label, epochs, steps_per_epoch, first_epoch)

    def step(self) -> None:
        self.inner.step()

    def epoch_end(self, metrics: EpochMetrics) -> None:
        self.inner.epoch_end(metrics)
        self.observer(metrics)

    def finish(self) -> None:
        self.inner.finish()
