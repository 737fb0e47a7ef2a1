"""The coordinator's progress view of a whole suite: one line per outcome, whatever executes it."""

from __future__ import annotations

import time

from kdbench.run.worker import RunOutcome


class SuiteProgress:
    """The coordinator's view of a whole suite, whatever executes it: one line per outcome with the runs
    done of the total, the failures so far and an ETA from the pace of the runs trained so far."""

    def __init__(self, total_runs: int) -> None:
        self.total, self.done, self.failed, self.trained = total_runs, 0, 0, 0
        self.start = time.perf_counter()

    def line(self, outcome: RunOutcome) -> str:
        """The outcome as a progress line (teachers and scores are the preparatory waves)."""
        if outcome.kind != "run":
            status = "failed " if outcome.status == "failed" else ""
            return f"{status}{outcome.label}: {outcome.detail or outcome.error}"
        self.done += 1
        self.failed += outcome.status == "failed"
        self.trained += outcome.status == "finished"
        head = f"[{self.done}/{self.total}{f', {self.failed} failed' if self.failed else ''}]"
        if outcome.status == "failed":
            return f"{head} failed {outcome.label} {outcome.pair} seed {outcome.seed}: {outcome.error}"
        record = outcome.record
        eta = ""
        if self.trained and self.done < self.total:
            pace = (time.perf_counter() - self.start) / self.trained
            eta = f" · ETA {_duration(pace * (self.total - self.done))}"
        return (f"{head} {outcome.status:8s} {outcome.label} {outcome.pair} seed {outcome.seed}: "
                f"best {record.best_top1:.2f} last {record.last_top1:.2f}{eta}")

    def summary(self) -> str:
        skipped = self.done - self.trained - self.failed
        return (f"{self.done - self.failed}/{self.total} runs finished ({self.trained} trained, {skipped} already "
                f"done, {self.failed} failed) in {time.perf_counter() - self.start:.1f} s")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
