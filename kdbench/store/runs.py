"""The run store: where run records live, and the one rule for "this run is already done".

Layout under a root (default ``./results``)::

    raw/<suite>/suite.json           the suite's description and table options, for `kdbench tables`
    raw/<suite>/<key>/record.json    a finished run: the record every table is derived from
    raw/<suite>/<key>/failure.json   the last failure of a run that has no result (retried next time)
    raw/<suite>/<key>/resume.pt      an epoch checkpoint of a run in progress (deleted when it finishes)

A run's key hashes everything that changes its numbers and nothing else (not the suite), so a run
finished under one suite is done for every suite: :meth:`RunStore.locate` finds it wherever it was
filed, and :meth:`RunStore.is_done` is the only test the dry run, the executors and the worker use.
A record is never overwritten except by ``--force``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel, ConfigDict

from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import RunSpec
from kdbench.store.files import UnreadableFile, atomic_torch_save, atomic_write_json, load_tensors, plain, read_json
from kdbench.store.locks import file_lock
from kdbench.store.records import FailureRecord, RunRecord, read_finished

RECORD = "record.json"
FAILURE = "failure.json"
RESUME = "resume.pt"
SUITE_INFO = "suite.json"


class SuiteInfo(BaseModel):
    """What ``kdbench run`` saves beside a suite's records so that its tables can be rebuilt alone."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    description: str = ""
    file: str = ""
    table: dict[str, Any] = {}


def read_run_record(path: Path) -> RunRecord | None:
    return read_finished(path, RunRecord, "run record")


@dataclass(frozen=True)
class ResumeFile:
    """An engine checkpointer that keeps a run's resume state in one file, written atomically.

    The state (state dicts, the epochs so far as plain dicts, numbers) is tensors and plain data only, and
    is read back as such (:func:`~kdbench.store.files.load_tensors`): a file that does not load that way (a
    planted pickle, a foreign or truncated file) is passed over with a one-line warning and the run starts
    again from its first epoch; its next checkpoint replaces the file."""

    path: Path

    def load(self, device: str) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            state = load_tensors(self.path, map_location=device)
        except UnreadableFile as exc:
            reason = str(exc)
        else:
            if isinstance(state, dict):
                return state
            reason = f"it holds a {type(state).__name__}, not a resume state"
        warnings.warn(f"{self.path}: resume checkpoint not loaded ({reason}); the run starts again from epoch 1",
                      KdbenchWarning, stacklevel=2)
        return None

    def save(self, state: dict[str, Any]) -> None:
        atomic_torch_save(plain(state), self.path)


class RunStore:
    """Run records by suite and key under one root; the runner's only way to decide what is done."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def suite_dir(self, suite: str) -> Path:
        return self.root / "raw" / suite

    def tables_dir(self, suite: str) -> Path:
        """Where a suite's derived table, CSVs and plots go."""
        return self.root / suite

    def run_dir(self, spec: RunSpec) -> Path:
        return self.suite_dir(spec.suite) / spec.key

    def record_path(self, spec: RunSpec) -> Path:
        return self.run_dir(spec) / RECORD

    def locate(self, spec: RunSpec) -> tuple[Path, RunRecord] | None:
        """The record of this run and where it is: filed under its own suite first, else under any other
        suite. Each candidate file is read once."""
        own = self.record_path(spec)
        candidates = [own, *(p for p in sorted((self.root / "raw").glob(f"*/{spec.key}/{RECORD}")) if p != own)]
        for path in candidates:
            record = read_run_record(path)
            if record is not None:
                return path, record
        return None

    def is_done(self, spec: RunSpec) -> bool:
        """Has this run (same key) finished, under this suite or any other? The one rule."""
        return self.locate(spec) is not None

    def finished(self, spec: RunSpec) -> RunRecord | None:
        """The run's record filed under this suite, adopting one finished under another suite."""
        found = self.locate(spec)
        if found is None:
            return None
        path, record = found
        if path != self.record_path(spec):
            record = record.under(spec)
            self.write_record(spec, record)
        return record

    def write_record(self, spec: RunSpec, record: RunRecord) -> Path:
        path = self.record_path(spec)
        atomic_write_json(path, record.model_dump(mode="json"))
        (path.parent / FAILURE).unlink(missing_ok=True)
        (path.parent / RESUME).unlink(missing_ok=True)
        return path

    def failure_path(self, spec: RunSpec) -> Path:
        """Where the run's last failure is kept (its error and traceback), until a record replaces it."""
        return self.run_dir(spec) / FAILURE

    def write_failure(self, spec: RunSpec, failure: FailureRecord) -> Path:
        path = self.failure_path(spec)
        atomic_write_json(path, failure.model_dump(mode="json"))
        return path

    def lock(self, spec: RunSpec) -> FileLock:
        """Held while a process trains this run (any suite): the same key is never trained twice at once."""
        return file_lock(self.root / "locks" / spec.key)

    def resume_file(self, spec: RunSpec) -> ResumeFile:
        return ResumeFile(self.run_dir(spec) / RESUME)

    def write_suite_info(self, info: SuiteInfo) -> Path:
        path = self.suite_dir(info.name) / SUITE_INFO
        atomic_write_json(path, info.model_dump(mode="json"))
        return path


def read_suite_info(suite_dir: Path) -> SuiteInfo | None:
    data = read_json(suite_dir / SUITE_INFO)
    return SuiteInfo.model_validate(data) if isinstance(data, dict) else None


def iter_records(directory: str | Path) -> Iterator[RunRecord]:
    """Every finished record below ``directory`` (a suite's raw dir, or all of ``raw/``), in path order."""
    for path in sorted(Path(directory).rglob(RECORD)):
        record = read_run_record(path)
        if record is not None:
            yield record
