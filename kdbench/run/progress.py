"""Progress of every long phase (a teacher's or a student's training, a teacher-output cache build, the teacher
passes of scoring), with an ETA: a rich bar on a terminal; elsewhere (a log file, CI, an executor's worker
process) plain lines at a bounded rate, so that a long phase is never silent."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from kdbench.train.callbacks import Callback, EpochEnd, TrainingStart
from kdbench.train.outcome import EpochMetrics

# Plain lines: one at least every LINE_EVERY_S while a phase goes on, or after each LINE_FRACTION of it when
# that comes sooner, but never two within LINE_MIN_S (an epoch's own line aside).
LINE_EVERY_S = 60.0
LINE_FRACTION = 0.1
LINE_MIN_S = 10.0


def duration(seconds: float) -> str:
    """A duration for a progress line: seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class ProgressBar(Callback):
    """A bar over all steps of a phase, with the latest metrics and the time left, on a terminal. Elsewhere,
    or in a worker process, plain lines: one when the phase starts, one per epoch, and between them a line
    at a bounded rate (:data:`LINE_EVERY_S`, :data:`LINE_FRACTION`, :data:`LINE_MIN_S`), each with an ETA
    from the pace of the steps done so far in this process. ``unit`` names what the phase counts in
    ``epochs`` (a cache build counts views). An epoch shows test top-1 as ``top1``; with ``validation`` (a
    tune trial, judged on the validation split) it shows validation top-1 as ``val top1`` instead.

    A plain line is one ``print`` of the whole line, written and flushed at once, so the lines of several
    worker processes sharing one stream interleave but never cut into each other."""

    def __init__(self, console: Console | None = None, unit: str = "epoch",
                 clock: Callable[[], float] = time.monotonic, validation: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.unit, self.clock, self.validation = unit, clock, validation
        # a worker process shares its terminal with others: bars would overwrite each other
        self.plain = not self.console.is_terminal or multiprocessing.parent_process() is not None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._epochs = self._per_epoch = 1
        self._total = self._done = self._first = self._last_done = 0
        self._t0 = self._last_line = 0.0

    def start(self, run: TrainingStart) -> None:
        self._label, self._epochs, self._per_epoch = run.label, run.epochs, max(1, run.steps_per_epoch)
        self._total = run.epochs * run.steps_per_epoch
        self._done = self._first = self._last_done = (run.first_epoch - 1) * run.steps_per_epoch
        self._t0 = self._last_line = self.clock()
        if self.plain:
            size = f"{self._total:,} steps" if run.epochs == 1 else (
                f"{run.epochs} {self.unit}s × {run.steps_per_epoch:,} steps")
            again = f", going on from {self.unit} {run.first_epoch}" if run.first_epoch > 1 else ""
            self._say(f"started: {size}{again}")
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self._label, total=self._total, completed=self._done, status="")

    def step(self) -> None:
        self._done += 1
        if not self.plain:
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task)
            return
        now = self.clock()
        since = now - self._last_line
        due = since >= LINE_EVERY_S or self._done - self._last_done >= LINE_FRACTION * self._total
        if since >= LINE_MIN_S and due:
            self._say(self._steps_line(now), now)

    def _steps_line(self, now: float) -> str:
        where = ""
        if self._epochs > 1:
            where = f"{self.unit} {min(self._done // self._per_epoch + 1, self._epochs)}/{self._epochs} · "
        share = self._done / max(1, self._total)
        return (f"{where}{self._done:,}/{self._total:,} steps ({share:.0%}) · {duration(now - self._t0)} elapsed"
                f"{self._eta(now)}")

    def epoch_end(self, end: EpochEnd) -> None:
        m = end.metrics
        status = f"epoch {m.epoch}/{self._epochs} loss {m.train_loss:.3f} {self._accuracy(m)}"
        if not self.plain and self._progress is not None and self._task is not None:
            self._progress.update(self._task, status=status)
        else:  # logs (SLURM, CI, nohup): one plain line per epoch instead of a bar
            self._done = max(self._done, m.epoch * self._per_epoch)
            now = self.clock()
            self._say(status + self._eta(now), now)

    def _accuracy(self, m: EpochMetrics) -> str:
        """The epoch's accuracy, named for its split: a tune trial's is validation top-1, else test top-1."""
        if self.validation and m.val_top1 is not None:
            return f"val top1 {m.val_top1:.2f}"
        return f"top1 {m.test_top1:.2f}"

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _eta(self, now: float) -> str:
        """`` · ETA …`` from this process's pace so far ("" before the first step or after the last)."""
        done = self._done - self._first
        if done <= 0 or self._done >= self._total:
            return ""
        return f" · ETA {duration((now - self._t0) / done * (self._total - self._done))}"

    def _say(self, text: str, now: float | None = None) -> None:
        self.console.print(f"{self._label}: {text}", markup=False, highlight=False, soft_wrap=True)
        self._last_line, self._last_done = self.clock() if now is None else now, self._done


def progress_display(quiet: bool, unit: str = "epoch", validation: bool = False) -> Callback:
    """The progress display, or nothing with ``--quiet`` or without a standard error stream; ``validation``
    labels each epoch's accuracy as validation top-1 (``RunOptions.validation_progress``: a tune trial)."""
    return Callback() if quiet or not sys.stderr else ProgressBar(unit=unit, validation=validation)
