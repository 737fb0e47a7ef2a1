"""Your runs beside the published ones: does a suite reproduce? One row per table row and pair.

The rows are the suite's table's rows, named and ordered as the method × pair table names and orders them
(``method_pair.row_names``, ``method_pair.table_rows``): Teacher, Student (scratch), then the method entries in
suite order, each by pair in suite order. The student from scratch is one row per student ("– → resnet8"),
as its runs serve every pair with that student.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pandas as pd

from kdbench.store import write_outputs
from kdbench.tables.cells import (
    SIGNIFICANT_NOTE,
    Stats,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    pairs,
    teacher_stats,
    welch_p,
)
from kdbench.tables.frame import results_frame
from kdbench.tables.method_pair import TEACHER_ROW, row_names, table_rows
from kdbench.tables.write import table_settings

COLUMNS = ["row", "pair", "yours_mean", "yours_std", "yours_n", "published_mean", "published_std", "published_n",
           "delta", "p_value", "same_runs"]

#: One row of the block before it is sorted: (table row's rank, pair order), row, pair, yours, published, same runs.
_Entry = tuple[tuple[int, int], str, str, Stats, Stats, int]


def _pair(teacher: object, student: object) -> str:
    return f"{teacher} → {student}" if isinstance(teacher, str) and teacher else f"– → {student}"


def reproduction_table(yours: pd.DataFrame, published: pd.DataFrame, metric: str = "best") -> Table:
    """Mean ± std of your runs and of the published runs per table row and pair, Δ = yours − published with
    Welch's t-test over seeds, and how many of your runs are the very runs published (same key)."""
    column = f"{metric}_top1"
    mine, theirs = yours.assign(row=row_names(yours)), published.assign(row=row_names(published))
    rank = {row: i for i, row in enumerate(table_rows(yours))}
    entries: list[_Entry] = []
    for teacher, student in pairs(yours):
        runs = yours[(yours["teacher"] == teacher) & (yours["student"] == student)]
        entries.append(((rank[TEACHER_ROW], int(runs["pair_order"].min())), TEACHER_ROW, _pair(teacher, student),
                        teacher_stats(yours, teacher, student), teacher_stats(published, teacher, student), 0))
    for (row, by, of), group in mine.groupby(["row", "teacher", "student"], dropna=False, sort=False):
        other = theirs[(theirs["row"] == row) & (theirs["student"] == of)
                       & (theirs["teacher"].isna() if not isinstance(by, str) else theirs["teacher"] == by)]
        entries.append(((rank[str(row)], int(group["pair_order"].min())), str(row), _pair(by, of),
                        mean_std(group[column]), mean_std(other[column]), len(set(group["key"]) & set(other["key"]))))
    entries.sort(key=lambda entry: (entry[0], entry[2]))
    tidy = pd.DataFrame(
        [(row, pair, *a, *b, delta(a, b), welch_p(a, b), same) for _, row, pair, a, b, same in entries],
        columns=COLUMNS,
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


def write_reproduction(raw_dir: Path, published_dir: Path, out_dir: Path,
                       metric: str | None = None) -> tuple[Table, list[Path]] | None:
    """Yours (``raw_dir``) beside the published records of the same suite (``published_dir``), in the metric of
    the suite's table, written as ``reproduction.md`` and ``.csv`` into ``out_dir``. None when the suite is not
    published, or when ``raw_dir`` is the published folder itself (the published results tabled on their own)."""
    if Path(published_dir).resolve() == Path(raw_dir).resolve() or not any(Path(published_dir).glob("*/record.json")):
        return None
    metric, _ = table_settings(Path(raw_dir), metric)
    compared = reproduction_table(results_frame(raw_dir), results_frame(published_dir), metric)
    paths = write_outputs(Path(out_dir), {"reproduction.md": compared.markdown.encode(),
                                          "reproduction.csv": compared.tidy.to_csv(index=False).encode()})
    return compared, paths
