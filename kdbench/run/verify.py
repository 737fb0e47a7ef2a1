"""``kdbench verify``: re-train a seeded sample of a suite's published records and compare the numbers.

A published record carries its whole resolved spec, so a re-run needs nothing else: each sampled spec goes
through the job and worker that ``kdbench run``'s last wave executes (``RunJob`` on a ``Worker``), which train
the run's teacher or score its Data Selection first when ``$KDBENCH_HOME`` does not have them yet, as a run
would. The re-runs go into a temporary run store that is removed afterwards: never into the user's ``runs/``
(where the published run, or another copy of it, would count as done and be skipped) nor into ``results/``.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from kdbench.run.jobs import RunJob
from kdbench.run.options import RunOptions
from kdbench.run.worker import Worker, WorkerFactory
from kdbench.store import Environment, RunRecord

# What moves a run's numbers besides its spec (README, "What reproduces"): the machine, its kernels, the torch
# build, threads and the memory format. Equal in the published record and the re-run: the same machine, where
# they should agree to the last digit.
MACHINE = ("device", "device_name", "cpu_capability", "gpu", "cuda", "torch", "torch_threads", "memory_format_used")


@dataclass(frozen=True)
class Verification:
    """One published record and its re-run (None when it was not re-run: ``error`` says why)."""

    published: RunRecord
    rerun: RunRecord | None
    tolerance: float  # top-1 points
    error: str | None = None

    @property
    def delta_best(self) -> float | None:
        return None if self.rerun is None else self.rerun.best_top1 - self.published.best_top1

    @property
    def delta_last(self) -> float | None:
        return None if self.rerun is None else self.rerun.last_top1 - self.published.last_top1

    @property
    def within(self) -> bool:
        """Both the best and the last top-1 of the re-run within the tolerance of the published ones."""
        deltas = (self.delta_best, self.delta_last)
        return all(d is not None and abs(d) <= self.tolerance for d in deltas)

    @property
    def same_machine(self) -> bool | None:
        if self.rerun is None:
            return None
        return same_machine(self.published.environment, self.rerun.environment)


def same_machine(a: Environment, b: Environment) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in MACHINE)


def sample(records: Sequence[RunRecord], count: int, seed: int) -> list[RunRecord]:
    """``count`` of the records (all when there are fewer), drawn with ``random.Random(seed)`` from their
    sorted keys, so the same seed draws the same runs on any machine; in key order."""
    by_key = {record.key: record for record in records}
    keys = sorted(by_key)
    chosen = random.Random(seed).sample(keys, min(count, len(keys)))
    return [by_key[key] for key in sorted(chosen)]


def verify_records(records: Sequence[RunRecord], options: RunOptions, plugin_files: tuple[str, ...],
                   tolerance: float) -> Iterator[Verification]:
    """Re-train each record's spec in a temporary run store; one verification per record, as each finishes.
    A record whose spec does not hash to its key (an edited spec) is not re-trained: it could not be the run
    the record says it is. Each re-run trains in the memory format its record trained in (older CPU records:
    contiguous), one worker per format; a teacher already in ``$KDBENCH_HOME`` is used as it is."""
    with tempfile.TemporaryDirectory(prefix="kdbench-verify-") as store:
        workers: dict[bool, Worker] = {}
        for record in records:
            if record.spec.key != record.key:
                yield Verification(record, None, tolerance, f"its spec hashes to {record.spec.key}, not to its key "
                                   f"{record.key} (an edited spec; see kdbench check-results)")
                continue
            channels_last = record.environment.memory_format_used == "channels_last"
            if channels_last not in workers:
                workers[channels_last] = WorkerFactory(replace(options, runs_root=store, force=False,
                                                               checkpoint_every=0, channels_last=channels_last),
                                                       plugin_files)()
            outcome = RunJob(record.spec).execute(workers[channels_last])
            yield Verification(record, outcome.record, tolerance, outcome.error)
