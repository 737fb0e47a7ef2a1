"""Everything that can be wrong with one published record file, each as one problem naming its field.

``kdbench check-results`` reads a results folder someone contributes. The store's reader already refuses a
record that is not valid (and skips it with a warning), but a valid record can still be wrong: a number
edited by hand no longer agrees with the per-epoch metrics it came from, an edited spec no longer hashes to
the key the record is filed under, a NaN or a top-1 of 140 % is still a float. So a record is read here as
pydantic reads it, and then checked against itself: its key against the hash of its spec, its headline
numbers against its epochs, every number against its range, and its provenance for presence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kdbench.store.records import SCHEMA_VERSION, RunRecord

# Ranges by field name, over the record's own fields (the spec, the environment and an estimator's settings are
# free-form and only checked for finite numbers). tests/test_check_results.py checks every name is a field.
PERCENT = frozenset({"best_top1", "last_top1", "last_top5", "teacher_top1", "train_top1", "test_top1", "test_top5",
                     "val_top1", "val_top5"})
FRACTION = frozenset({"teacher_correct_in_dt", "teacher_correct_in_ds", "auroc", "precision_at_k"})
NON_NEGATIVE = frozenset({"wall_time_s", "train_images_per_s", "epoch_time_s", "lr", "score_seconds",
                          "built_seconds", "seconds", "unreadable", "max_abs_error", "max_rel_error", "k", "samples",
                          "teacher_samples", "views"})
AT_LEAST_ONE = frozenset({"epoch", "best_epoch", "processes"})
FREE_FORM = frozenset({"spec", "environment", "estimator_info"})
# What says where a record came from; ``host``, ``device_name`` and ``executor`` are recorded since schema 2.
ENVIRONMENT = ("python", "platform", "torch", "kdbench", "device")
ENVIRONMENT_SINCE_2 = ("host", "device_name", "executor")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a results folder: the file (relative to the folder checked), the field, what."""

    path: str
    field: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.what}"


def record_problems(path: Path, shown: str, suite: str) -> list[Problem]:
    """The problems of the record file at ``path`` (``shown``: its path as the report names it), filed in the
    folder of ``suite``: none for a record kdbench wrote and nobody edited."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Problem(shown, "(file)", f"not readable as JSON ({type(exc).__name__}: {_first_line(str(exc))})")]
    if not isinstance(data, dict):
        return [Problem(shown, "(file)", f"a JSON {type(data).__name__}, not a run record")]
    problems = [Problem(shown, field, what) for field, what in _non_finite(data)]
    try:
        record = RunRecord.model_validate(data)
    except ValidationError as exc:
        return problems + [Problem(shown, _where(error["loc"]), _first_line(error["msg"])) for error in exc.errors()]
    found = [*_identity(record, path.parent.name, suite), *_headline(record), *_ranges(data), *_provenance(record)]
    return problems + [Problem(shown, field, what) for field, what in found]


def _identity(record: RunRecord, folder: str, suite: str) -> Iterator[tuple[str, str]]:
    """The key against the folder and the spec's hash; the fields a spec determines against the spec."""
    if record.schema_version > SCHEMA_VERSION:
        yield "schema_version", f"{record.schema_version}: written by a newer kdbench (this one reads up to " \
                                f"{SCHEMA_VERSION})"
    if record.key != folder:
        yield "key", f"{record.key!r}, but the record is in folder {folder!r} (a renamed folder or an edited key)"
    if record.spec.key != record.key:
        yield "spec", f"hashes to {record.spec.key!r}, not to the record's key {record.key!r} (an edited spec)"
    spec = record.spec
    expected = {
        "suite": suite, "spec.suite": suite, "label": spec.label, "method": spec.method.name,
        "student": spec.student, "teacher": spec.teacher.arch if spec.teacher else None, "pair": spec.pair,
        "seed": spec.seed, "dataset": spec.dataset.name, "teacher_key": spec.teacher.key if spec.teacher else None,
    }
    actual = {**record.model_dump(include=set(expected) - {"spec.suite"}), "spec.suite": spec.suite}
    for field, value in expected.items():
        if actual[field] != value:
            whose = f"the suite folder {suite!r}" if field in ("suite", "spec.suite") else f"its spec's {value!r}"
            yield field, f"{actual[field]!r}, not {whose}"


def _headline(record: RunRecord) -> Iterator[tuple[str, str]]:
    """The numbers a table reads against the per-epoch metrics they were taken from: best is the first epoch
    reaching the highest test top-1 (as the engine picks it), last is the last epoch."""
    epochs = record.metrics
    numbers = [m.epoch for m in epochs]
    if numbers != list(range(1, len(epochs) + 1)):
        yield "metrics", f"epochs {_span(numbers)}, not 1 to {len(epochs)} in order"
    if len(epochs) != record.spec.recipe.epochs:
        yield "metrics", f"{len(epochs)} epochs, but the spec's recipe trains {record.spec.recipe.epochs}"
    best = max(epochs, key=lambda m: m.test_top1)
    if record.best_top1 != best.test_top1:
        yield "best_top1", f"{record.best_top1!r}, but the highest per-epoch test_top1 is {best.test_top1!r} " \
                           f"(epoch {best.epoch})"
    if record.best_epoch != best.epoch:
        yield "best_epoch", f"{record.best_epoch}, but the first epoch reaching the highest test_top1 is {best.epoch}"
    if record.last_top1 != epochs[-1].test_top1:
        yield "last_top1", f"{record.last_top1!r}, but the last epoch's test_top1 is {epochs[-1].test_top1!r}"
    if record.last_top5 is not None and record.last_top5 != epochs[-1].test_top5:
        yield "last_top5", f"{record.last_top5!r}, but the last epoch's test_top5 is {epochs[-1].test_top5!r}"
    if record.selection is not None and record.selection.teacher_samples > record.selection.samples:
        yield "selection.teacher_samples", f"{record.selection.teacher_samples}, more than the " \
                                           f"{record.selection.samples} training samples"


def _ranges(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for where, value in _numbers(data, skip=FREE_FORM):
        name = next((p for p in reversed(where) if isinstance(p, str)), "")
        if not math.isfinite(value):
            continue  # said once already, by _non_finite
        if name in PERCENT and not 0 <= value <= 100:
            yield _where(where), f"{value!r} is not a percentage in [0, 100]"
        elif name in FRACTION and not 0 <= value <= 1:
            yield _where(where), f"{value!r} is not a fraction in [0, 1]"
        elif name in NON_NEGATIVE and value < 0:
            yield _where(where), f"{value!r} is negative"
        elif name in AT_LEAST_ONE and value < 1:
            yield _where(where), f"{value!r} is less than 1"


def _provenance(record: RunRecord) -> Iterator[tuple[str, str]]:
    """Where the record came from: the code revision, when it finished, and the machine (its environment)."""
    if not record.git_revision:
        yield "git_revision", "missing: the code revision that trained the run (train from a git checkout of kdbench)"
    if record.finished_at <= 0:
        yield "finished_at", f"{record.finished_at!r}: missing, not a time the run finished"
    wanted = ENVIRONMENT + (ENVIRONMENT_SINCE_2 if record.schema_version >= 2 else ())
    for name in wanted:
        if not getattr(record.environment, name):
            yield f"environment.{name}", "missing: the record does not say where it ran"


def _non_finite(data: Any) -> Iterator[tuple[str, str]]:
    for where, value in _numbers(data):
        if not math.isfinite(value):
            yield _where(where), f"{value!r} is not a finite number"


def _numbers(data: Any, where: tuple[str | int, ...] = (), skip: frozenset[str] = frozenset()
             ) -> Iterator[tuple[tuple[str | int, ...], float]]:
    """Every number in parsed JSON with its path; floats and ints, not booleans."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in skip:
                yield from _numbers(value, (*where, key), skip)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _numbers(value, (*where, index), skip)
    elif isinstance(data, int | float) and not isinstance(data, bool):
        try:
            number = float(data)
        except OverflowError:  # an integer too large for a float
            number = math.inf
        yield where, number


def _where(loc: tuple[str | int, ...] | list[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _span(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers) if len(numbers) <= 6 else f"{numbers[0]}, {numbers[1]}, …, {numbers[-1]}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
