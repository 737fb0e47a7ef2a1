"""The generic table: methods × teacher → student pairs, with the teacher and from-scratch rows first.

Which row a run is shown in (:func:`row_names`) and the order of the rows (:func:`table_rows`) are defined
here once: the table and the yours-vs-published block beside it (``reproduction``) both use them, so the two
name and order the same runs alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.tables.cells import Table, format_cell, mean_std, metric_column, pairs, scratch_stats, teacher_stats

TEACHER_ROW = "Teacher"
STUDENT_ROW = "Student (scratch)"


def _scratch(frame: pd.DataFrame) -> pd.Series:
    """The runs of the student from scratch: no teacher, plain CE."""
    scratch: pd.Series = frame["teacher"].isna() & (frame["method"] == SCRATCH_METHOD)
    return scratch


def row_names(frame: pd.DataFrame) -> pd.Series:
    """The row each run is shown in: :data:`STUDENT_ROW` for the student from scratch, its method entry's label
    for every other run."""
    names: pd.Series = frame["label"].where(~_scratch(frame), STUDENT_ROW)
    return names


def method_rows(frame: pd.DataFrame) -> list[str]:
    """The method entries' rows, in suite order (a label where its first entry is in the suite file)."""
    labels: list[str] = frame[~_scratch(frame)].groupby("label")["method_order"].min().sort_values().index.tolist()
    return labels


def table_rows(frame: pd.DataFrame) -> list[str]:
    """Every row of the table, top to bottom: Teacher when a run has one, Student (scratch) when the student was
    trained from scratch, then the method entries."""
    return ([TEACHER_ROW] if frame["teacher"].notna().any() else []) + \
        ([STUDENT_ROW] if _scratch(frame).any() else []) + method_rows(frame)


def method_pair_table(frame: pd.DataFrame, metric: str = "best", title: str = "") -> Table:
    """Rows: Teacher, Student (scratch), then each method entry; columns: teacher → student pairs."""
    column = metric_column(frame, metric)
    distill = frame[frame["teacher"].notna()]
    has_scratch = bool(_scratch(frame).any())
    others = frame[frame["teacher"].isna() & (frame["method"] != SCRATCH_METHOD)]
    columns: Sequence[tuple[str | None, str]] = pairs(frame)
    if not columns:  # suites with no teacher at all: one column per student
        columns = [(None, s) for s in frame.sort_values("pair_order")["student"].unique()]
    labels = method_rows(frame)
    tidy = []
    for teacher, student in columns:
        pair = f"{teacher} → {student}" if teacher else student
        t_rows = distill[(distill["teacher"] == teacher) & (distill["student"] == student)]
        if teacher is not None:
            tidy.append((TEACHER_ROW, pair, *teacher_stats(frame, teacher, student)))
        if has_scratch:
            tidy.append((STUDENT_ROW, pair, *scratch_stats(frame, student, column)))
        for label in labels:
            rows = pd.concat([t_rows, others[others["student"] == student]])
            tidy.append((label, pair, *mean_std(rows[rows["label"] == label][column])))
    tidy_df = pd.DataFrame(tidy, columns=["row", "pair", "mean", "std", "n"])
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    cells = [format_cell(m, s, n) for m, s, n in tidy_df[["mean", "std", "n"]].itertuples(index=False)]
    grid = tidy_df.assign(cell=cells).pivot(index="row", columns="pair", values="cell")
    row_order = [r for r in table_rows(frame) if r in grid.index]
    grid = grid.loc[row_order, [f"{t} → {s}" if t else s for t, s in columns]]
    grid.index.name = "method"
    seeds = frame.groupby(["label", "student", "teacher"], dropna=False)["seed"].nunique()
    note = (
        f"{metric} top-1 accuracy (%), mean ± std over {int(seeds.min())}–{int(seeds.max())} seeds"
        if len(seeds) and seeds.min() != seeds.max()
        else f"{metric} top-1 accuracy (%), mean ± std over {int(seeds.max()) if len(seeds) else 0} seed(s)"
    )
    heading = f"### {title}\n\n" if title else ""
    body = grid.to_markdown(disable_numparse=True)  # keep "73.00" as written, not re-parsed to 73
    return Table(markdown=heading + body + f"\n\n{note}; derived from {len(frame)} run records.\n", tidy=tidy_df)
