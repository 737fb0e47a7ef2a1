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
    """One row per finished run below ``directory``, with Data Selection / Label Revision flattened."""
    rows = []
    for r in iter_records(directory):
        spec = r.get("spec", {})
        order = spec.get("order", [0, 0])
        selection, revision = spec.get("selection") or {}, spec.get("revision") or {}
        rows.append(
            {
                "suite": r["suite"],
                "key": r["key"],
                "label": r["label"],
                "method": r["method"],
                "method_params": spec.get("method", {}).get("params", {}),
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
                "ds": bool(selection),
                "ds_estimator": (selection.get("estimator") or {}).get("name") if selection else None,
                "ds_fraction": selection.get("fraction") if selection else None,
                "ds_order": selection.get("order") if selection else None,
                "lr": bool(revision),
                "lr_name": revision.get("name") if revision else None,
                "lr_eta": revision.get("params", {}).get("eta") if revision else None,
                "lr_lambda1": revision.get("lambda1") if revision else None,
                "lr_lambda2": revision.get("lambda2") if revision else None,
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
    body = grid.to_markdown(disable_numparse=True)  # keep "73.00" as written, not re-parsed to 73
    markdown = heading + body + f"\n\n{note}; derived from {len(frame)} run records.\n"
    return Table(markdown=markdown, tidy=tidy_df)


SUITE_FILE = "suite.json"  # the suite's table options, saved beside its records by `kdbench run`


def render(frame: pd.DataFrame, metric: str = "best", layout: str | None = None, title: str = "") -> tuple[str, Table]:
    """The table in ``layout`` (a paper layout or "method_pair"); recognised from the records when None."""
    from kdbench import comparison_tables, paper_tables

    layout = layout or paper_tables.detect_layout(frame)
    if layout == "method_pair":
        return layout, method_pair_table(frame, metric=metric, title=title)
    table = {**paper_tables.LAYOUTS, **comparison_tables.LAYOUTS}[layout](frame, metric=metric)
    heading = f"### {title}\n\n" if title else ""
    return layout, Table(markdown=heading + table.markdown, tidy=table.tidy)


def write_suite_tables(
    raw_dir: str | Path, out_dir: str | Path, metric: str | None = None, layout: str | None = None
) -> tuple[Table, list[Path]]:
    """Render a suite's table from its records and write ``table.md``, ``table.csv`` and ``runs.csv``.

    Metric and layout default to what the suite file asked for (saved as ``suite.json`` beside the
    records), then to best top-1 and the layout recognised from the records.
    """
    import json

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    frame = results_frame(raw_dir)
    if frame.empty:
        from kdbench.errors import KdbenchError

        raise KdbenchError(f"no finished run records under {raw_dir}")
    saved = json.loads((raw_dir / SUITE_FILE).read_text()) if (raw_dir / SUITE_FILE).is_file() else {}
    metric = metric or saved.get("table", {}).get("metric") or "best"
    layout = layout or saved.get("table", {}).get("layout")
    suite = str(frame["suite"].iloc[0])
    layout, table = render(frame, metric, layout, title=f"{suite}: {metric} top-1 (%)")
    md, csv, runs = out_dir / "table.md", out_dir / "table.csv", out_dir / "runs.csv"
    atomic_write_bytes(md, table.markdown.encode())
    atomic_write_bytes(csv, table.tidy.to_csv(index=False).encode())
    atomic_write_bytes(runs, frame.drop(columns=["method_params"]).to_csv(index=False).encode())
    written = [md, csv, runs]
    from kdbench.plots import time_accuracy_png

    for (teacher, student), _ in frame[frame["teacher"].notna()].groupby(["teacher", "student"], sort=False):
        png = out_dir / f"time_accuracy_{teacher}_{student}.png"
        atomic_write_bytes(png, time_accuracy_png(frame, teacher, student, metric))
        written.append(png)
    return table, written
