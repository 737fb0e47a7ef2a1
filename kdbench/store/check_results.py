"""``kdbench check-results``: a results folder someone contributes, checked file by file before it is merged.

A contribution is a folder as ``kdbench publish`` leaves it: ``raw/<suite>/<key>/record.json`` (and each
suite's ``suite.json``), the tables it derives (``<suite>/``) and the leaderboard. Every record must be one
kdbench wrote and nobody edited (:mod:`kdbench.store.record_check`), and every other file one that kdbench
writes there: anything else (notes, a failure record or a resume checkpoint of the run store, a table edited by
hand, a leftover of an earlier publish) is a problem too, since whatever is merged into ``results/`` is read as
kdbench's. What belongs beside ``raw/`` is not the store's to know: the caller passes ``expected``, which says
what kdbench writes there for these records (``kdbench.cli.expected_files``: the tables and the leaderboard
that ``kdbench publish`` and ``kdbench leaderboard`` write, and release manifests).

Three shapes are accepted: a results root (it holds ``raw/``; everything is checked), a ``raw/`` folder of
suites, or one suite's folder of records (``raw/<suite>``; only records and ``suite.json`` are checked then).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from kdbench.errors import KdbenchError
from kdbench.store.files import read_json
from kdbench.store.record_check import Problem, record_problems
from kdbench.store.runs import FAILURE, RECORD, RESUME, SUITE_INFO, SuiteInfo

Shape = Literal["results", "raw", "suite"]
RAW = "raw"
NOT_KDBENCHS = "not a file kdbench writes there"
# Files kdbench writes into a run store but never publishes: worth saying what they are.
RUN_STORE_ONLY = {FAILURE: "a failure record of the run store; kdbench publish copies finished records only",
                  RESUME: "a resume checkpoint of the run store; kdbench publish copies finished records only"}


@dataclass(frozen=True)
class ExpectedFile:
    """A file kdbench writes beside ``raw/`` for the records of a results root (a table, a leaderboard file, a
    release manifest) and what it may hold: one content per way it may have been built (the leaderboard's
    metric); none: not compared (a figure, whose bytes depend on the plotting library's build)."""

    path: str  # relative to the results root, with forward slashes
    contents: frozenset[bytes] = frozenset()


@dataclass(frozen=True)
class ResultsCheck:
    """What ``check_results`` found: how many record files it read, of which suites, and every problem."""

    folder: Path
    shape: Shape
    suites: tuple[str, ...]
    records: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)


def folder_shape(folder: Path) -> Shape:
    """Which of the three accepted shapes ``folder`` is; a one-line error when it is none of them."""
    if not folder.is_dir():
        raise KdbenchError(f"{folder}: no such folder")
    if (folder / RAW).is_dir():
        return "results"
    children = [p for p in folder.iterdir() if p.is_dir()]
    if (folder / SUITE_INFO).is_file() or any((p / RECORD).is_file() for p in children):
        return "suite"
    if any((p / SUITE_INFO).is_file() or any(p.glob(f"*/{RECORD}")) for p in children):
        return "raw"
    raise KdbenchError(f"{folder} is not a results folder: it holds no raw/ folder, no suite folders and no "
                       f"<key>/{RECORD} files")


def check_results(folder: Path, expected: Callable[[Path], Sequence[ExpectedFile]] | None = None) -> ResultsCheck:
    """Every problem of the results folder ``folder`` (see the module docstring). ``expected`` gives the files
    kdbench writes beside ``raw/`` in a results root; without it, only the records and their folders are
    checked."""
    folder = Path(folder)
    shape = folder_shape(folder)
    problems: list[Problem] = []
    raw = {"results": folder / RAW, "raw": folder, "suite": None}[shape]
    suite_dirs = [folder] if raw is None else _suite_folders(folder, raw, problems)
    records = sum(_check_suite(folder, suite_dir, problems) for suite_dir in suite_dirs)
    if shape == "results" and expected is not None:
        _check_beside_raw(folder, expected(folder), problems)
    return ResultsCheck(folder, shape, tuple(d.name for d in suite_dirs), records, tuple(problems))


def _shown(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix() or "."


def _foreign(folder: Path, path: Path, problems: list[Problem]) -> None:
    """A file or folder that kdbench does not write where it is."""
    shown = _shown(folder, path)
    if path.is_symlink():
        problems.append(Problem(shown, "(file)", "a link; kdbench writes plain files"))
    elif path.is_dir():
        problems.append(Problem(shown + "/", "(folder)", "not a folder kdbench writes there"))
    else:
        problems.append(Problem(shown, "(file)", RUN_STORE_ONLY.get(path.name, NOT_KDBENCHS)))


def _suite_folders(folder: Path, raw: Path, problems: list[Problem]) -> list[Path]:
    suites = []
    for entry in sorted(raw.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            suites.append(entry)
        else:
            _foreign(folder, entry, problems)
    return suites


def _check_suite(folder: Path, suite_dir: Path, problems: list[Problem]) -> int:
    """The problems of one suite's folder of records; how many record files it holds."""
    records = 0
    for entry in sorted(suite_dir.iterdir()):
        if entry.name == SUITE_INFO and entry.is_file() and not entry.is_symlink():
            problems += _suite_info_problems(entry, _shown(folder, entry), suite_dir.name)
        elif entry.is_dir() and not entry.is_symlink():
            records += _check_run_folder(folder, entry, suite_dir.name, problems)
        else:
            _foreign(folder, entry, problems)
    return records


def _check_run_folder(folder: Path, run_dir: Path, suite: str, problems: list[Problem]) -> int:
    record = run_dir / RECORD
    for entry in sorted(run_dir.iterdir()):
        if entry != record or entry.is_symlink() or not entry.is_file():
            _foreign(folder, entry, problems)
    if record.is_file() and not record.is_symlink():
        problems += record_problems(record, _shown(folder, record), suite)
        return 1
    problems.append(Problem(_shown(folder, run_dir) + "/", RECORD, "missing: a published run's folder holds its "
                            "record"))
    return 0


def _suite_info_problems(path: Path, shown: str, suite: str) -> list[Problem]:
    data = read_json(path)
    if not isinstance(data, dict):
        return [Problem(shown, "(file)", "not a JSON object (a partial or corrupt file)")]
    try:
        info = SuiteInfo.model_validate(data)
    except ValidationError as exc:
        return [Problem(shown, ".".join(str(p) for p in e["loc"]) or "(top level)", e["msg"]) for e in exc.errors()]
    if info.name != suite:
        return [Problem(shown, "name", f"{info.name!r}, but it is in the folder of suite {suite!r}")]
    return []


def _check_beside_raw(folder: Path, files: Sequence[ExpectedFile], problems: list[Problem]) -> None:
    """Everything beside ``raw/``: exactly the files kdbench writes there for the records, as it writes them."""
    expected = {f.path: f for f in files}
    parents = {parent.as_posix() for f in files for parent in Path(f.path).parents if parent != Path(".")}
    seen: set[str] = set()

    def walk(here: Path) -> None:
        for entry in sorted(here.iterdir()):
            shown = _shown(folder, entry)
            if here == folder and entry.name == RAW:
                continue
            if entry.is_dir() and not entry.is_symlink() and shown in parents:
                walk(entry)
            elif shown in expected and entry.is_file() and not entry.is_symlink():
                seen.add(shown)
                contents = expected[shown].contents
                if contents and entry.read_bytes() not in contents:
                    problems.append(Problem(shown, "(contents)", "differs from what kdbench writes from the records "
                                            "here: rebuild it (kdbench publish, kdbench leaderboard); derived files "
                                            "are never edited by hand"))
            else:
                _foreign(folder, entry, problems)

    walk(folder)
    for path in sorted(set(expected) - seen):
        problems.append(Problem(path, "(file)", "missing: kdbench writes it from the records (run kdbench publish, or "
                                "kdbench leaderboard)"))
