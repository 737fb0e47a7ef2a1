"""The files kdbench writes beside ``raw/`` in a results folder, for the records there: what ``kdbench
check-results`` expects to find, and with what text.

The derived files are found by running their writers: on a copy of the records in a temporary folder, each
suite's tables as ``kdbench publish`` builds them (the suite's metric and layout, from its ``suite.json``), then
the leaderboard as ``publish`` and ``leaderboard`` build it (:func:`kdbench.cli.results.write_leaderboard`), with
either metric, since ``--metric`` is not recorded. So the names, and the text files' bytes, are the writers'
own, whatever they write later, and nothing in the checked folder is touched. Figures, the HTML page and binary
tables are expected by name only: their bytes depend on the library builds that wrote them. A release manifest
(``kdbench leaderboard --release``) is not derived from the records: each one there is expected when it reads
as a manifest.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console

from kdbench.cli.common import Metric
from kdbench.cli.results import write_leaderboard
from kdbench.errors import KdbenchError, KdbenchWarning
from kdbench.store.check_results import RAW, ExpectedFile
from kdbench.store.releases import read_release, release_path, releases_in
from kdbench.store.runs import RECORD, SUITE_INFO

COMPARED = (".md", ".csv")  # text the writers produce byte for byte from the records
METRICS: tuple[Metric, ...] = ("best", "last")


def expected_files(root: Path) -> list[ExpectedFile]:
    """The files kdbench writes beside ``root / "raw"`` for the records there, by path relative to ``root``."""
    return derived_files(root) + releases(root)


def derived_files(root: Path) -> list[ExpectedFile]:
    """What the writers derive from the records under ``root / "raw"``. A suite (or the leaderboard) with no
    valid record derives nothing: its invalid records are the checker's to report."""
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: kdbench.cli.results' docstring

    contents: dict[str, set[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="kdbench-check-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", KdbenchWarning)  # an invalid record: reported by the record checks
        copy = Path(tmp)
        shutil.copytree(root / RAW, copy / RAW, symlinks=True,
                        ignore=lambda here, names: [n for n in names if not _read_by_writers(Path(here) / n)])
        for suite_dir in sorted(p for p in (copy / RAW).iterdir() if p.is_dir()):
            _written(contents, copy, partial(_paths, write_suite_tables, suite_dir, copy / suite_dir.name))
        for metric in METRICS:
            _written(contents, copy, partial(_leaderboard, copy, metric))
    return [ExpectedFile(path, frozenset(found) if path.endswith(COMPARED) else frozenset())
            for path, found in sorted(contents.items())]


def releases(root: Path) -> list[ExpectedFile]:
    """The release manifests under ``root`` that read as manifests (by name: a release is never rewritten)."""
    found = []
    for name in releases_in(root):
        try:
            read_release(root, name)
        except KdbenchError:  # not a manifest: a file kdbench did not write
            continue
        found.append(ExpectedFile(release_path(root, name).relative_to(root).as_posix()))
    return found


def _read_by_writers(path: Path) -> bool:
    """Suite folders, run folders, and their record and suite files: what the writers read."""
    return not path.is_symlink() and (path.is_dir() or path.name in (RECORD, SUITE_INFO))


def _paths(write: Callable[[Path, Path], tuple[object, list[Path]]], raw_dir: Path, out_dir: Path) -> list[Path]:
    return write(raw_dir, out_dir)[1]


def _leaderboard(root: Path, metric: Metric) -> list[Path]:
    """The leaderboard's writer run on ``root`` (what it prints goes nowhere); every file then beside ``raw/``,
    which takes in whatever that writer writes (the suites' tables, already there, come again unchanged)."""
    write_leaderboard(Console(file=io.StringIO()), root, metric)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != RAW)


def _written(contents: dict[str, set[bytes]], root: Path, write: Callable[[], list[Path]]) -> None:
    """Run one writer; add what it wrote, by path relative to ``root``."""
    try:
        paths = write()
    except KdbenchError:  # no valid record to derive from
        return
    for path in paths:
        contents.setdefault(path.relative_to(root).as_posix(), set()).add(path.read_bytes())
