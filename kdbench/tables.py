"""Tables derived from stored run records, never typed by hand.

``results_frame`` turns records into one tidy row per run; ``method_pair_table`` renders the standard
method × pair layout (mean ± std over seeds) with the teacher and student-from-scratch rows first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kdbench.store import atomic_write_bytes, iter_records

TEACHER_ROW = "Teacher"
STUDENT_ROW = "Student (scratch)"
SCRATCH_METHOD = "ce"


def results_frame(directory: str | Path) -> pd.DataFrame:
    """One row per finished run below ``directory``."""
    rows = []
    for r in iter_records(directory):
        order = r.get("spec", {}).get("order", [0, 0])
        rows.append(
            {
                "suite": r["suite"],
                "key": r["key"],
                "label": r["label"],
                "method": r["method"],
                "teacher": r.get("teacher"),
                "student": r["student"],
                "seed": r["seed"],
                "last_top1": r["last_top1"],
                "best_top1": r["best_top1"],
                "teacher_top1": r.get("teacher_top1"),
                "wall_time_s": r.get("wall_time_s"),
                "train_images_per_s": r.get("train_images_per_s"),
                "pair_order": order[0],
                "method_order": order[1],
            }
        )
    return pd.DataFrame(rows)


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna().astype(float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    return float(values.mean()), float(values.std(ddof=1)) if n > 1 else 0.0, n


def format_cell(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "–"
    return f"{mean:.2f}" if n == 1 else f"{mean:.2f} ± {std:.2f}"


@dataclass(frozen=True)
class Table:
    markdown: str
    tidy: pd.DataFrame  # one row per (row label, pair): mean, std, n


def method_pair_table(frame: pd.DataFrame, metric: str = "best", title: str = "") -> Table:
    """Rows: Teacher, Student (scratch), then each method entry; columns: teacher → student pairs."""
    column = f"{metric}_top1"
    distill = frame[frame["teacher"].notna()]
    scratch = frame[frame["teacher"].isna() & (frame["method"] == SCRATCH_METHOD)]
    others = frame[frame["teacher"].isna() & (frame["method"] != SCRATCH_METHOD)]
    pairs = (
        distill.groupby(["teacher", "student"])["pair_order"].min().sort_values().index.tolist()
    )
    if not pairs:  # suites with no teacher at all: one column per student
        pairs = [(None, s) for s in frame.sort_values("pair_order")["student"].unique()]
    labels = (
        pd.concat([distill, others]).groupby("label")["method_order"].min().sort_values().index.tolist()
    )
    tidy = []
    for teacher, student in pairs:
        pair = f"{teacher} → {student}" if teacher else student
        t_rows = distill[(distill["teacher"] == teacher) & (distill["student"] == student)]
        if teacher is not None:
            # One teacher per pair: its accuracy is recorded identically in every run of the pair.
            tidy.append((TEACHER_ROW, pair, *mean_std(t_rows["teacher_top1"].drop_duplicates().head(1))))
        if not scratch.empty:
            tidy.append((STUDENT_ROW, pair, *mean_std(scratch[scratch["student"] == student][column])))
        for label in labels:
            rows = pd.concat([t_rows, others[others["student"] == student]])
            tidy.append((label, pair, *mean_std(rows[rows["label"] == label][column])))
    tidy_df = pd.DataFrame(tidy, columns=["row", "pair", "mean", "std", "n"])
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    cells = [format_cell(m, s, n) for m, s, n in tidy_df[["mean", "std", "n"]].itertuples(index=False)]
    wide = tidy_df.assign(cell=cells)
    grid = wide.pivot(index="row", columns="pair", values="cell")
    row_order = [r for r in [TEACHER_ROW, STUDENT_ROW, *labels] if r in grid.index]
    col_order = [f"{t} → {s}" if t else s for t, s in pairs]
    grid = grid.loc[row_order, col_order]
    grid.index.name = "method"
    seeds = frame.groupby(["label", "student", "teacher"], dropna=False)["seed"].nunique()
    note = (
        f"{metric} top-1 accuracy (%), mean ± std over {int(seeds.min())}–{int(seeds.max())} seeds"
        if len(seeds) and seeds.min() != seeds.max()
        else f"{metric} top-1 accuracy (%), mean ± std over {int(seeds.max()) if len(seeds) else 0} seed(s)"
    )
    heading = f"### {title}\n\n" if title else ""
    markdown = heading + grid.to_markdown() + f"\n\n{note}; derived from {len(frame)} run records.\n"
    return Table(markdown=markdown, tidy=tidy_df)


def write_suite_tables(raw_dir: str | Path, out_dir: str | Path, metric: str = "best") -> tuple[Table, list[Path]]:
    """Render a suite's table from its records and write ``table.md`` and ``table.csv``."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    frame = results_frame(raw_dir)
    if frame.empty:
        from kdbench.errors import KdbenchError

        raise KdbenchError(f"no finished run records under {raw_dir}")
    suite = str(frame["suite"].iloc[0])
    table = method_pair_table(frame, metric=metric, title=f"{suite}: {metric} top-1 (%)")
    md, csv = out_dir / "table.md", out_dir / "table.csv"
    atomic_write_bytes(md, table.markdown.encode())
    atomic_write_bytes(csv, table.tidy.to_csv(index=False).encode())
    runs = out_dir / "runs.csv"
    atomic_write_bytes(runs, frame.to_csv(index=False).encode())
    return table, [md, csv, runs]
