"""File locks: two processes (a pool, two `kdbench run` of one suite, nodes on a shared filesystem) that
need the same teacher, score file or run never both compute it; the one that waited finds it done."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock


def file_lock(path: Path) -> FileLock:
    """A lock on ``path`` (the lock file sits beside it as ``<name>.lock``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")
