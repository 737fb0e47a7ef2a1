"""What changed in the published records since a release: one line per record file added, removed or changed,
with the headline numbers that changed (``best_top1 71.20 → 71.50``); nothing is written.

Files are matched by path (``raw/<suite>/<key>/record.json``); a file whose sha256 differs has changed, and its
summary in the manifest against the record now says how. The code revision is compared too, but is not a
difference (see :func:`check_release`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from kdbench.store.published_files import PublishedFile
from kdbench.store.releases import RecordSummary, Release

#: The summary fields compared between a release and the tree (the others name the run, which its path keys).
COMPARED = ("best_top1", "best_epoch", "last_top1", "last_top5", "teacher_top1", "wall_time_s", "git_revision",
            "finished_at", "host")


@dataclass(frozen=True)
class Difference:
    """A record file that differs between a release and the tree: its path, and what changed, in words."""

    kind: Literal["added", "removed", "changed"]
    path: str
    detail: str

    @property
    def line(self) -> str:
        return f"{self.kind} {self.path}: {self.detail}"


@dataclass(frozen=True)
class ReleaseCheck:
    """The published tree against a release: the record files that differ, and the code revision now (compared
    in the summary, not a difference: see :func:`check_release`)."""

    release: Release
    differences: list[Difference]
    code_revision: str | None

    @property
    def summary(self) -> str:
        """One line: whether the records match the release, how many differ, and the code revision then and now."""
        release = self.release
        name, created = release.name, release.created.strftime("%Y-%m-%d %H:%M UTC")
        if not self.differences:
            line = f"the published records match release {name} ({created}): {len(release.records)} record files"
        else:
            counts = {kind: sum(d.kind == kind for d in self.differences) for kind in ("added", "removed", "changed")}
            line = (f"{len(self.differences)} record file(s) differ from release {name} ({created}): "
                    + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        if release.code_revision != self.code_revision:
            line += (f"; code revision {release.code_revision or 'unknown'} then, {self.code_revision or 'unknown'} "
                     "now (not a difference: each record names the code that trained it)")
        return line


def _value(field: str, value: Any, other: Any) -> str:
    """A summary value in words, with as many decimals as tell it from ``other``."""
    if value is None:
        return "none"
    if field == "finished_at":
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        for decimals in (2, 4, 6, 9):
            if not isinstance(other, float) or f"{value:.{decimals}f}" != f"{other:.{decimals}f}":
                return f"{value:.{decimals}f}"
        return repr(value)
    return str(value)


def _changes(then: RecordSummary, now: RecordSummary) -> list[str]:
    changes = []
    for field in COMPARED:
        old, new = getattr(then, field), getattr(now, field)
        if old != new:
            changes.append(f"{field} {_value(field, old, new)} → {_value(field, new, old)}")
    return changes


def check_release(results: Path, release: Release, files: Sequence[PublishedFile],
                  code_revision: str | None) -> ReleaseCheck:
    """The record files under ``results`` (``files``, as read now) against ``release``, by path: added, removed,
    or changed (another sha256). Reads nothing but whether a released path still holds a file (then it is a file
    that no longer validates), and writes nothing.

    The code revision is compared but is not a difference: code moves on with every commit, and a check that
    failed for that alone would fail always; what code trained a record is in the record (its ``git_revision``),
    so new code that changes a number shows up as a changed record once it is republished."""
    released = {r.path: r for r in release.records}
    current = {f.path: f for f in files}
    differences = []
    for path in sorted(released.keys() | current.keys()):
        old, new = released.get(path), current.get(path)
        if old is None:
            assert new is not None
            summary = RecordSummary.of(new.record)
            differences.append(Difference("added", path, f"{summary.run()}: {_metrics(summary)}"))
        elif new is None:
            if (results / path).is_file():
                differences.append(Difference("changed", path, f"{old.summary.run()}: no longer a valid record"))
            else:
                differences.append(Difference("removed", path, f"{old.summary.run()}: {_metrics(old.summary)}"))
        elif new.sha256 != old.sha256:
            changes = _changes(old.summary, RecordSummary.of(new.record))
            detail = ", ".join(changes) if changes else (
                f"the file differs (sha256 {old.sha256[:12]}… → {new.sha256[:12]}…); its headline fields are equal")
            differences.append(Difference("changed", path, f"{old.summary.run()}: {detail}"))
    return ReleaseCheck(release, differences, code_revision)


def _metrics(summary: RecordSummary) -> str:
    return f"best_top1 {summary.best_top1:.2f}, last_top1 {summary.last_top1:.2f}"
