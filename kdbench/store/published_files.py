"""The published record files as they are on disk: each valid record with its path under ``results/`` and the
sha256 of its bytes.

The leaderboard, ``results/runs.parquet`` and a release manifest are all built from the same published tree.
Reading 10,000 records is seconds of validation, so the tree is read once here and each consumer takes what it
needs: the runs table every file (with its path), a release every file's hash, the leaderboard each run once
(:func:`one_per_run`).

A record is validated whole, then kept without its per-epoch metrics: they are 60% of a record's memory (10,000
records held whole took 0.4 GB), and what is built from here reads one per-epoch figure, the test top-1,
kept as a tuple beside the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kdbench.store.publish import check_results_folder, once_per_run, paused_gc, read_published_record
from kdbench.store.records import RunRecord
from kdbench.store.runs import RECORD, RunStore


@dataclass(frozen=True)
class PublishedFile:
    """One valid published record file."""

    path: str  # relative to the results folder, with forward slashes: raw/<suite>/<key>/record.json
    sha256: str  # of the file's bytes
    record: RunRecord  # validated whole, held with ``metrics`` empty: never write it back
    test_top1_per_epoch: tuple[float, ...]  # the one per-epoch figure kept (the runs table's)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published_files(published: RunStore) -> list[PublishedFile]:
    """Every valid record file under ``raw/``, in path order. An invalid or corrupt file is skipped with the
    store's one-line warning, as everywhere else: it is never tabled, published or released."""
    check_results_folder(published.root)
    files = []
    with paused_gc():
        for path in sorted((published.root / "raw").rglob(RECORD)):
            digest = file_sha256(path)  # hashed first: a file replaced before it is parsed shows as changed next time
            record = read_published_record(path)
            if record is not None:
                files.append(PublishedFile(path.relative_to(published.root).as_posix(), digest,
                                           record.model_copy(update={"metrics": []}),
                                           tuple(epoch.test_top1 for epoch in record.metrics)))
    return files


def one_per_run(files: Sequence[PublishedFile]) -> list[RunRecord]:
    """Each run once (:func:`~kdbench.store.publish.once_per_run`), from files already read."""
    return once_per_run(file.record for file in files)


def published_records(published: RunStore) -> list[RunRecord]:
    """Every published record, once per run: :func:`published_files` read for a caller that needs no paths."""
    return one_per_run(published_files(published))
