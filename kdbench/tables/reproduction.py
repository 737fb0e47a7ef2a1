"""Your runs beside the published ones: does a suite reproduce? One row per table row (label) and pair."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, cast

import pandas as pd

from kdbench.tables.cells import (
    SIGNIFICANT_NOTE,
    Stats,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    teacher_stats,
    welch_p,
)

COLUMNS = ["row", "pair", "yours_mean", "yours_std", "yours_n", "published_mean", "published_std", "published_n",
           "delta", "p_value", "same_runs"]


def _pair(teacher: object, student: object) -> str:
    return f"{teacher} → {student}" if isinstance(teacher, str) and teacher else f"– → {student}"


def reproduction_table(yours: pd.DataFrame, published: pd.DataFrame, metric: str = "best") -> Table:
    """Mean ± std of your runs and of the published runs per (label, pair), Δ = yours − published with
    Welch's t-test over seeds, and how many of your runs are the very runs published (same key)."""
    column = f"{metric}_top1"
    rows: list[tuple[Hashable, str, Stats, Stats, int]] = []
    groups = yours.groupby(["label", "teacher", "student"], dropna=False, sort=False)
    teachers = {(t, s) for t, s in zip(yours["teacher"], yours["student"], strict=True) if isinstance(t, str)}
    for teacher, student in sorted(teachers, key=lambda p: (p[1], p[0])):
        mine, theirs = teacher_stats(yours, teacher, student), teacher_stats(published, teacher, student)
        rows.append(("Teacher", _pair(teacher, student), mine, theirs, 0))
    for (label, group_teacher, group_student), group in groups:
        other = published[(published["label"] == label) & (published["student"] == group_student)
                          & (published["teacher"].isna() if not isinstance(group_teacher, str)
                             else published["teacher"] == group_teacher)]
        rows.append((label, _pair(group_teacher, group_student), mean_std(group[column]), mean_std(other[column]),
                     len(set(group["key"]) & set(other["key"]))))
    tidy = pd.DataFrame(
        [(row, pair, *a, *b, delta(a, b), welch_p(a, b), same) for row, pair, a, b, same in rows], columns=COLUMNS
    )
    body = markdown(
        ["row", "pair", "yours", "published", "Δ (yours − published)"],
        [[r.row, r.pair, format_cell(r.yours_mean, r.yours_std, int(r.yours_n)),
          format_cell(r.published_mean, r.published_std, int(r.published_n)), format_delta(r.delta, r.p_value)]
         for r in cast(Iterable[Any], tidy.itertuples())],  # pandas-stubs: a row's fields are any scalar
    )
    note = (f"{metric} top-1 (%), mean ± std over seeds. {SIGNIFICANT_NOTE} A run with the same key as a published "
            "one ran the same code path on the same settings; the numbers differ only by hardware and library "
            "versions.")
    return Table(markdown=f"### Yours vs published\n\n{body}\n\n{note}\n", tidy=tidy)
