"""Run directories, atomic writes and resume.

Layout under a results root (default ``./results``)::

    raw/<suite>/<key>/record.json    a finished run: the record every table is derived from
    raw/<suite>/<key>/failure.json   the last failure of a run that has no result (retried next time)
    raw/<suite>/<key>/resume.pt      an epoch checkpoint of a run in progress (deleted when it finishes)

Every file is written to a temporary name in the same directory and renamed, so a run killed at any
moment leaves either the old file or the new one, never half of one. A record is never overwritten
except by ``--force``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdbench.spec import RunSpec

RECORD = "record.json"
FAILURE = "failure.json"
RESUME = "resume.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultStore:
    """Where run records live; the runner's only way to decide what is already done."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def raw_dir(self, suite: str) -> Path:
        return self.root / "raw" / suite

    def run_dir(self, spec: RunSpec) -> Path:
        return self.raw_dir(spec.suite) / spec.key

    def record(self, spec: RunSpec) -> dict[str, Any] | None:
        return read_record(self.run_dir(spec) / RECORD)

    def record_elsewhere(self, spec: RunSpec) -> dict[str, Any] | None:
        """The same run (same key) finished under another suite: reused rather than recomputed."""
        raw = self.root / "raw"
        if not raw.is_dir():
            return None
        for candidate in sorted(raw.glob(f"*/{spec.key}/{RECORD}")):
            record = read_record(candidate)
            if record is not None:
                return record
        return None

    def write_record(self, spec: RunSpec, record: dict[str, Any]) -> Path:
        run_dir = self.run_dir(spec)
        atomic_write_json(run_dir / RECORD, record)
        (run_dir / FAILURE).unlink(missing_ok=True)
        (run_dir / RESUME).unlink(missing_ok=True)
        return run_dir / RECORD

    def write_failure(self, spec: RunSpec, failure: dict[str, Any]) -> Path:
        path = self.run_dir(spec) / FAILURE
        atomic_write_json(path, failure)
        return path


def read_record(path: Path) -> dict[str, Any] | None:
    """A finished record, or None when absent, unreadable or not a finished run."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "finished" else None


def iter_records(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Every finished record below ``directory`` (a suite's raw dir, or all of ``raw/``)."""
    for path in sorted(Path(directory).rglob(RECORD)):
        record = read_record(path)
        if record is not None:
            yield record
