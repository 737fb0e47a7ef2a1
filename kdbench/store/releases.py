"""Releases: a named, immutable manifest of the published records (``results/releases/<name>.json``); what
changed since one is :mod:`kdbench.store.release_check`'s.

A release lists every published record file: its path under ``results/``, its run's key, the sha256 of its
bytes and its headline fields (accuracies, epoch, wall time, provenance), with the code revision, kdbench's
version, the leaderboard's metric and the date. The hashes say exactly which files changed since; the headline
fields say how (``best_top1 71.20 → 71.50``) without keeping a copy of every record. A release is never
overwritten: a number cited from release ``v1`` can always be traced to the files it came from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from kdbench.contracts.files import temporary_beside
from kdbench.errors import KdbenchError
from kdbench.store.published_files import PublishedFile
from kdbench.store.records import RunRecord

RELEASES = "releases"
RELEASE_FORMAT = 1
# Letters, digits, '.', '_', '-', not starting with '.': a plain file name (no hidden file, no '..').
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordSummary(_Model):
    """A record's headline fields, kept in the manifest to say how a changed record changed (names as in
    :class:`~kdbench.store.records.RunRecord`; ``host`` is its environment's)."""

    label: str
    pair: str
    seed: int
    best_top1: float
    best_epoch: int
    last_top1: float
    last_top5: float | None = None
    teacher_top1: float | None = None
    wall_time_s: float
    git_revision: str | None = None
    finished_at: float
    host: str | None = None

    @classmethod
    def of(cls, record: RunRecord) -> RecordSummary:
        return cls(label=record.label, pair=record.pair, seed=record.seed, best_top1=record.best_top1,
                   best_epoch=record.best_epoch, last_top1=record.last_top1, last_top5=record.last_top5,
                   teacher_top1=record.teacher_top1, wall_time_s=record.wall_time_s,
                   git_revision=record.git_revision, finished_at=record.finished_at, host=record.environment.host)

    def run(self) -> str:
        """Which run, in words: ``kd, resnet20 → resnet8, seed 0``."""
        return f"{self.label}, {self.pair}, seed {self.seed}"


class ReleasedRecord(_Model):
    """One record file of a release."""

    path: str  # relative to the results folder: raw/<suite>/<key>/record.json
    key: str
    sha256: str
    summary: RecordSummary


class Release(_Model):
    """The manifest of ``results/releases/<name>.json``."""

    format: int = RELEASE_FORMAT
    name: str
    created: AwareDatetime  # UTC
    code_revision: str | None  # the kdbench checkout's git revision (``-dirty`` with uncommitted code), if any
    kdbench_version: str
    metric: Literal["best", "last"]  # the leaderboard's
    records: list[ReleasedRecord]


def release_path(results: Path, name: str) -> Path:
    """Where release ``name`` lives; a name that is not a plain file name is one line (exit 2)."""
    if not NAME.fullmatch(name):
        raise KdbenchError(f"release name {name!r}: use letters, digits, '.', '_' and '-' (not starting with '.')")
    return results / RELEASES / f"{name}.json"


def releases_in(results: Path) -> list[str]:
    folder = results / RELEASES
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def make_release(name: str, files: Sequence[PublishedFile], *, code_revision: str | None, kdbench_version: str,
                 metric: Literal["best", "last"], created: datetime | None = None) -> Release:
    """The manifest of the published files as they are now."""
    when = (created or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    return Release(name=name, created=when, code_revision=code_revision, kdbench_version=kdbench_version,
                   metric=metric, records=[ReleasedRecord(path=f.path, key=f.record.key, sha256=f.sha256,
                                                          summary=RecordSummary.of(f.record)) for f in files])


def release_json(release: Release) -> str:
    """The manifest's text: the header fields indented, then one record per line (a record that changes in a
    later release is one line of a diff)."""
    data = release.model_dump(mode="json")
    records = data.pop("records")
    head = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in data.items()]
    body = ",\n".join("    " + json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    return "{\n" + "\n".join(head) + '\n  "records": [\n' + body + ("\n" if body else "") + "  ]\n}\n"


def _taken(name: str, path: Path) -> KdbenchError:
    return KdbenchError(f"release {name!r} exists already ({path}); releases are never overwritten: choose another "
                        "name")


def new_release_path(results: Path, name: str) -> Path:
    """Where a new release ``name`` goes; one line (exit 2) for a name that is not a plain file name or is taken,
    so that a command can refuse before it writes anything else."""
    path = release_path(results, name)
    if path.exists():
        raise _taken(name, path)
    return path


def write_release(results: Path, release: Release) -> Path:
    """Write the manifest, never over an existing one (releases are immutable): the file is written beside its
    target and hard-linked into place, which fails if the name is taken, even by a concurrent writer."""
    path = new_release_path(results, release.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(release_json(release).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise _taken(release.name, path) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_release(results: Path, name: str) -> Release:
    """Release ``name``; one line (exit 2) when there is none or its file is not a manifest."""
    path = release_path(results, name)
    if not path.is_file():
        known = releases_in(results)
        there = f"releases there: {', '.join(known)}" if known else "there is none yet; make one with --release NAME"
        raise KdbenchError(f"no release {name!r} under {results / RELEASES} ({there})")
    try:
        return Release.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise KdbenchError(f"{path}: not a release manifest ({field}: {err['msg']})") from None
