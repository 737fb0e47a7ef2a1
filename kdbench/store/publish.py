"""Publishing: a suite's finished records go from the user's run store into ``results/``, never silently
over a different published record.

A published record that differs from the one being published (the same key, trained again: another
revision, another machine) is replaced only when asked (``--replace``), and the new record keeps a note
of what it replaced. Records identical to the published ones are left as they are.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from kdbench.errors import KdbenchError
from kdbench.store.records import Replacement, RunRecord
from kdbench.store.runs import RunStore, iter_records, read_run_record, read_suite_info


@dataclass
class PublishReport:
    suite: str
    added: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.added) + len(self.replaced)


def check_results_folder(root: Path) -> None:
    """A results folder is kdbench's when it does not exist yet, is empty, or holds ``raw/``."""
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / "raw").is_dir())):
        raise KdbenchError(f"{root} is not a kdbench results folder (it has no raw/ folder of run records)")


def suites_in(store: RunStore) -> list[str]:
    raw = store.root / "raw"
    return sorted(p.name for p in raw.iterdir() if p.is_dir()) if raw.is_dir() else []


def publish_suite(runs: RunStore, published: RunStore, suite: str, replace: bool = False) -> PublishReport:
    """Copy ``suite``'s finished records from ``runs`` to ``published``; see the module docstring."""
    check_results_folder(published.root)
    source = runs.suite_dir(suite)
    if not source.is_dir():
        known = ", ".join(suites_in(runs)) or "none"
        raise KdbenchError(f"no suite {suite!r} in the run store {runs.root} (suites there: {known})")
    records = list(iter_records(source))
    if not records:
        raise KdbenchError(f"suite {suite!r} has no finished runs in {source}: nothing to publish")
    report = PublishReport(suite)
    pending: list[tuple[RunRecord, Path, RunRecord | None]] = []
    for record in records:
        target = published.record_path(record.spec)
        existing = read_run_record(target)
        if existing is None:
            pending.append((record, target, None))
        elif existing == record:
            report.unchanged.append(target)
        else:
            pending.append((record, target, existing))
    different = [target for _, target, existing in pending if existing is not None]
    if different and not replace:
        raise KdbenchError(
            f"{len(different)} published record(s) of {suite!r} differ from the run store's (e.g. {different[0]}); "
            "nothing was published: pass --replace to replace them (each new record notes what it replaced)"
        )
    now = time.time()
    for record, target, existing in pending:
        if existing is not None:
            record = record.model_copy(update={"replaced": [*existing.replaced, Replacement.of(existing, now)]})
            report.replaced.append(target)
        else:
            report.added.append(target)
        published.write_record(record.spec, record)
    info = read_suite_info(source)
    if info is not None:
        published.write_suite_info(info.model_copy(update={"file": portable_suite_file(info.file)}))
    return report


def portable_suite_file(file: str) -> str:
    """The suite file as published results name it: as given when relative; when absolute (it names the machine
    the suite ran on, which a published folder must not), from its ``suites/`` folder on, else its name alone."""
    path = PurePosixPath(file.replace("\\", "/"))
    if not path.is_absolute():
        return file
    parts = path.parts
    return str(PurePosixPath(*parts[parts.index("suites"):])) if "suites" in parts else path.name


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while many records are built, as it was before afterwards.

    Why: a record is thousands of small acyclic objects, so every allocation-triggered collection walks all the
    records read so far; for 10,000 records that is 60% of the reading time, and it finds nothing to free.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_published_record(path: Path) -> RunRecord | None:
    """A record file as :func:`~kdbench.store.runs.read_run_record` reads it, validated straight from its bytes (the
    JSON is not built as Python objects first). Anything it cannot read so is read the usual way, which gives the
    same None and the same one-line warning for a corrupt, partial, unfinished or invalid file."""
    try:
        return RunRecord.model_validate_json(path.read_bytes())
    except (OSError, ValueError, ValidationError):  # ValidationError is a ValueError; named for the reader
        return read_run_record(path)


def once_per_run(records: Iterable[RunRecord]) -> list[RunRecord]:
    """Each run once: a run published under two suites counts once (its first file in path order), but the same
    key trained on a GPU and on a CPU is two results (:attr:`Environment.device_class`), both kept."""
    seen: dict[tuple[str, str], RunRecord] = {}
    for record in records:
        seen.setdefault((record.key, record.environment.device_class), record)
    return list(seen.values())
