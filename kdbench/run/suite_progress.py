"""The coordinator's progress view of a whole suite: one line per outcome, whatever executes it."""

from __future__ import annotations

import time
from collections.abc import Callable

from kdbench.run.progress import duration
from kdbench.run.worker import RunOutcome


class SuiteProgress:
    """The coordinator's view of a whole suite, whatever executes it: one line per outcome with the runs
    done of the total, the failures so far and an ETA from the pace of the student runs trained so far.

    The pace is the clock time since the last preparatory job (teachers, scores) less the time runs spent
    building a teacher-output table (``teacher_cache.built_seconds``), per run trained: what the runs still
    to do will take, since they train with those teachers, scores and tables already there. A failed run
    says where its traceback was saved (``detail``, which ``execute_plan`` fills in)."""

    def __init__(self, total_runs: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.done, self.failed, self.trained = total_runs, 0, 0, 0
        self.clock = clock
        self.start = self._runs_from = clock()
        self._not_training = 0.0  # seconds runs spent building teacher-output tables

    def line(self, outcome: RunOutcome) -> str:
        """The outcome as a progress line (teachers and scores are the preparatory waves)."""
        if outcome.kind != "run":
            self._runs_from = self.clock()  # the runs' pace is timed from the end of the preparatory jobs
            status = "failed " if outcome.status == "failed" else ""
            return f"{status}{outcome.label}: {outcome.detail or outcome.error}"
        self.done += 1
        self.failed += outcome.status == "failed"
        self.trained += outcome.status == "finished"
        head = f"[{self.done}/{self.total}{f', {self.failed} failed' if self.failed else ''}]"
        if outcome.status == "failed":
            where = f" · {outcome.detail}" if outcome.detail else ""
            return f"{head} failed {outcome.label} {outcome.pair} seed {outcome.seed}: {outcome.error}{where}"
        record = outcome.record
        assert record is not None, "a finished or skipped run has its record"
        if outcome.status == "finished" and record.teacher_cache is not None:
            self._not_training += record.teacher_cache.built_seconds or 0.0
        eta = ""
        if self.trained and self.done < self.total:
            pace = max(0.0, self.clock() - self._runs_from - self._not_training) / self.trained
            eta = f" · ETA {duration(pace * (self.total - self.done))}"
        return (f"{head} {outcome.status:8s} {outcome.label} {outcome.pair} seed {outcome.seed}: "
                f"best {record.best_top1:.2f} last {record.last_top1:.2f}{eta}")

    def summary(self) -> str:
        skipped = self.done - self.trained - self.failed
        return (f"{self.done - self.failed}/{self.total} runs finished ({self.trained} trained, {skipped} already "
                f"done, {self.failed} failed) in {self.clock() - self.start:.1f} s")
