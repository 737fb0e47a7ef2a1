"""A suite's derived files from its records: ``table.md``, tidy ``table.csv``, ``runs.csv``, ``paper.csv``
(the published numbers beside ours, where the paper has them) and a time-vs-accuracy plot per pair."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from kdbench.errors import KdbenchError
from kdbench.store import read_suite_info, write_outputs
from kdbench.tables.cells import Table
from kdbench.tables.frame import results_frame
from kdbench.tables.layouts import render
from kdbench.tables.plots import time_accuracy_png
from kdbench.tables.reference import paper_block
from kdbench.tables.removal_plot import removal_png
from kdbench.tables.teachers import teacher_gain_png


def table_settings(raw_dir: Path, metric: str | None = None, layout: str | None = None) -> tuple[str, str | None]:
    """The metric and layout of a suite's table: as asked, else what the suite file asked for (saved beside the
    records by ``kdbench run``), else best top-1 and (None) the layout recognised from the records."""
    info = read_suite_info(raw_dir)
    saved = info.table if info else {}
    return metric or saved.get("metric") or "best", layout or saved.get("layout")


def write_suite_tables(
    raw_dir: str | Path, out_dir: str | Path, metric: str | None = None, layout: str | None = None
) -> tuple[Table, list[Path]]:
    """Render a suite's table from its records and write it with its CSVs and plots into ``out_dir``.

    Metric and layout default to what the suite file asked for (saved beside the records by
    ``kdbench run``), then to best top-1 and the layout recognised from the records.
    """
    raw_dir = Path(raw_dir)
    frame = results_frame(raw_dir)
    if frame.empty:
        raise KdbenchError(f"no finished run records under {raw_dir}")
    metric, layout = table_settings(raw_dir, metric, layout)
    suite = str(frame["suite"].iloc[0])
    layout, table = render(frame, metric, layout, title=f"{suite}: {metric} top-1 (%)")
    paper = paper_block(frame, metric)
    markdown = table.markdown + (f"\n{paper.markdown}" if paper is not None else "")
    files = {
        "table.md": markdown.encode(),
        "table.csv": table.tidy.to_csv(index=False).encode(),
        "runs.csv": frame.drop(columns=["method_params"]).to_csv(index=False).encode(),
    }
    if paper is not None:
        files["paper.csv"] = paper.tidy.to_csv(index=False).encode()
    if layout == "teachers":
        files["teacher_gain.png"] = teacher_gain_png(frame, metric)
    if layout == "removal":
        for teacher, student in table.tidy[["teacher", "student"]].drop_duplicates().itertuples(index=False):
            files[f"removal_{teacher}_{student}.png"] = removal_png(table.tidy, str(teacher), str(student), metric)
    for (teacher, student), _ in frame[frame["teacher"].notna()].groupby(["teacher", "student"], sort=False):
        png = time_accuracy_png(frame, cast(str, teacher), cast(str, student), metric)  # group keys: model names
        files[f"time_accuracy_{teacher}_{student}.png"] = png
    return Table(markdown, table.tidy), write_outputs(Path(out_dir), files)
