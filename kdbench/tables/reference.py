"""Published numbers as data, beside ours: the paper's Tables II–IX (VII on ImageNet) and the reference
implementations' teachers and students from scratch (docs/methods.md §8–9), in ``reference/paper_numbers.csv``.

Each published number is keyed by what was run, not by where it is printed: dataset, teacher, student,
method and the Data Selection / Label Revision settings (the *signature*). So one number serves every
table and the leaderboard: a run matches it when it has the same signature on the same pair. The rows
``method = teacher`` hold the teacher's accuracy, ``method = ce`` the student from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.tables.cells import Table, format_cell, markdown, mean_std
from kdbench.tables.recipes import default_recipe

REFERENCE_CSV = Path(__file__).resolve().parent / "reference" / "paper_numbers.csv"
SIGNATURE = ("method", "ds_estimator", "ds_fraction", "ds_order", "lr_name", "lr_eta", "lr_lambda1", "lr_lambda2",
             "recipe", "logit_std")
TEACHER = "teacher"  # the signature method of a teacher's own accuracy
COLUMNS = ["dataset", "teacher", "student", "row", "tables", "source", "mean", "std", "n", "paper", "delta"]


def load_reference(path: Path = REFERENCE_CSV) -> pd.DataFrame:
    """The published numbers, every key column as text (empty when not set), ``top1`` as a number."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["top1"] = frame["top1"].astype(float)
    for column in SIGNATURE:
        frame[column] = frame[column].map(_text)
    return frame


def _text(value: Any) -> str:
    """One spelling per value: '' for missing, '0.8' for 0.8 and '0.80', 'ptmax' for a name."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def run_signatures(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its signature columns spelled as in the reference (DS/LR columns empty without DS/LR; the
    recipe by name, its dataset's default when it follows none; ``logit_std`` "True" or empty)."""
    data: pd.DataFrame = frame.copy()
    for column in SIGNATURE:
        if column == "logit_std":
            data[column] = data[column].map(lambda v: "True" if v is True else "") if column in data.columns else ""
        else:
            data[column] = data[column].map(_text) if column in data.columns else ""
    if len(data):
        named = data["recipe"] != ""
        data["recipe"] = data["recipe"].where(named, data["dataset"].map(lambda d: default_recipe(str(d))))
    return data


def paper_comparison(frame: pd.DataFrame, metric: str = "best") -> pd.DataFrame:
    """Our runs beside the published number of the same signature on the same pair: one row per match.

    ``mean``/``std``/``n`` are ours over seeds, ``paper`` the published value (a mean over the paper's
    trials, without a spread, so the gap ``delta`` = ours − paper cannot be tested for significance).
    """
    if frame.empty or "dataset" not in frame.columns:
        empty: pd.DataFrame = pd.DataFrame(columns=COLUMNS)
        return empty
    reference = load_reference()
    column = f"{metric}_top1"
    if "noise_rate" in frame.columns:  # the published numbers are on clean labels
        frame = frame[frame["noise_rate"].fillna(0.0) == 0.0]
    data = run_signatures(frame)
    rows = []
    for (dataset, teacher, student), ref in reference.groupby(["dataset", "teacher", "student"], sort=False):
        pair_runs = data[(data["dataset"] == dataset) & (data["teacher"] == teacher) & (data["student"] == student)]
        scratch = data[(data["dataset"] == dataset) & data["teacher"].isna() & (data["method"] == SCRATCH_METHOD)
                       & (data["student"] == student)]
        if pair_runs.empty:
            continue
        for _, published in ref.iterrows():
            if published["method"] == TEACHER:
                stats = mean_std(pair_runs["teacher_top1"].drop_duplicates().head(1))
            elif published["method"] == SCRATCH_METHOD:
                stats = mean_std(scratch[column])
            else:
                match = pair_runs
                for key in SIGNATURE:
                    match = match[match[key] == published[key]]
                stats = mean_std(match[column])
            if stats[2]:
                rows.append({"dataset": dataset, "teacher": teacher, "student": student, "row": published["row"],
                             "tables": published["tables"], "source": published["source"], "mean": stats[0],
                             "std": stats[1], "n": stats[2], "paper": published["top1"],
                             "delta": stats[0] - published["top1"]})
    comparison: pd.DataFrame = pd.DataFrame(rows, columns=COLUMNS)
    return comparison


def paper_block(frame: pd.DataFrame, metric: str = "best") -> Table | None:
    """A "published vs ours" table for the runs of ``frame`` that the published numbers cover, or None."""
    found = paper_comparison(frame, metric)
    if found.empty:
        return None
    # pandas-stubs types a row's fields as any scalar; these are paper_comparison's numbers and text
    rows = cast(Iterable[Any], found.itertuples())
    body = markdown(
        ["pair", "published as", "ours", "published", "Δ (ours − published)", "source"],
        [[f"{r.teacher} → {r.student}", r.row, format_cell(r.mean, r.std, int(r.n)), f"{r.paper:.2f}",
          f"{r.delta:+.2f}", f"{r.source} ({_tables(r.tables)})"] for r in rows],
    )
    note = (f"Ours: {metric} top-1 (%), mean ± std over our seeds; published: the paper's mean over its trials "
            "(docs/methods.md §9), students from scratch as published with the reference implementations (§8).")
    return Table(markdown=f"#### Published vs ours\n\n{body}\n\n{note}\n", tidy=found)


def _tables(tables: str) -> str:
    """"Tables II, IV" for the paper's tables, "docs/methods.md §8" for the reference implementations' numbers."""
    names = tables.split(";")
    printed = [n for n in names if not n.startswith("§")]
    parts = [("Table " if len(printed) == 1 else "Tables ") + ", ".join(printed)] if printed else []
    return "; ".join(parts + [f"docs/methods.md {n}" for n in names if n.startswith("§")])
