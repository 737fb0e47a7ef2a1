"""Removal curves (docs/methods.md §12a): a student's accuracy as the highest- or lowest-valued training samples by
an estimator are removed (Data Selection with ``mode: drop``), one curve per estimator and end, random removal
as the floor a useful estimator must beat (OpenDataVal's remove-high/remove-low experiment).

The 0% point of every curve is the same method without Data Selection (the suite's baseline entry), so the
curves start together; a curve's other points are its drop runs by fraction removed.
"""

from __future__ import annotations

import math

import pandas as pd

from kdbench.tables.cells import Table, format_cell, markdown, mean_std
from kdbench.tables.paper_common import Section, num_text, render_by_pair, stat_record, tidy_frame

RANDOM = "random"
ENDS = {"highest": "highest removed", "lowest": "lowest removed"}


def is_removal(frame: pd.DataFrame) -> bool:
    """Whether any run removed samples (``mode: drop``): such a suite is read as removal curves."""
    return "ds_mode" in frame and bool((frame["ds_mode"] == "drop").any())


def without_removal(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs every other layout reads: a drop run is no Data Selection run (nothing went to a teacher), and
    no baseline either."""
    if "ds_mode" not in frame:
        return frame
    kept: pd.DataFrame = frame[frame["ds_mode"] != "drop"]
    return kept


def curve_of(row: pd.Series) -> str:
    """A drop run's curve: its estimator and the end it removed, or random."""
    if row["ds_order"] == RANDOM or row["ds_estimator"] == RANDOM:
        return RANDOM
    return f"{row['ds_estimator']} ({ENDS.get(str(row['ds_order']), str(row['ds_order']))})"


def _curves(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(drop runs with their curve and percentage removed, the baseline runs: the same methods without DS)."""
    drop = rows[rows["ds"] & (rows["ds_mode"] == "drop")]
    drop = drop.assign(curve=[curve_of(r) for _, r in drop.iterrows()] if len(drop) else [],
                       pct=[round(f * 100, 6) for f in drop["ds_fraction"]])
    with_lr = bool(len(drop)) and bool(drop["lr"].all())  # curves drawn with LR start from the method with LR
    baseline = rows[~rows["ds"] & rows["method"].isin(set(drop["method"])) & (rows["lr"] == with_lr)]
    return drop, baseline


def curve_order(curves: set[str]) -> list[str]:
    """The estimators' curves by name, random last: the floor under them."""
    return sorted(c for c in curves if c != RANDOM) + ([RANDOM] if RANDOM in curves else [])


def _removal_section(rows: pd.DataFrame, column: str) -> Section:
    drop, baseline = _curves(rows)
    base = mean_std(baseline[column])
    percentages = [0.0, *sorted(set(drop["pct"]))]
    tidy, table = [], []
    for curve in curve_order(set(drop["curve"])):
        cells = [format_cell(*base)]
        tidy.append(stat_record(curve=curve, pct=0.0)(base))
        for pct in percentages[1:]:
            cell = mean_std(drop[(drop["curve"] == curve) & (drop["pct"] == pct)][column])
            tidy.append(stat_record(curve=curve, pct=pct)(cell))
            cells.append(format_cell(*cell))
        table.append([curve, *cells])
    if not table:
        return Section(body="No removal runs.", tidy=tidy_frame([], ["curve", "pct", "mean", "std", "n"]), used=0)
    body = markdown(["Curve", *[f"{num_text(p)}%" for p in percentages]], table)
    body += ("\n\nRemoved (%): share of the training samples removed before training; 0% is the same method "
             "without Data Selection. highest / lowest removed: the samples with the highest / lowest scores of "
             "the estimator; random: a seeded random subset, the floor an estimator should beat.")
    used = len(baseline) + len(drop)
    return Section(body=body, tidy=tidy_frame(tidy, ["curve", "pct", "mean", "std", "n"]), used=used)


def removal_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Accuracy by share of training samples removed, one row per curve (estimator and end, random last)."""
    return render_by_pair(frame, metric, "Removal curves: accuracy as valued samples are removed",
                          _removal_section, ["curve", "pct"])


def curve_points(tidy: pd.DataFrame, teacher: str, student: str) -> dict[str, list[tuple[float, float, float]]]:
    """Each curve's (percentage removed, mean, std) points for one pair, from the table's tidy rows."""
    rows = tidy[(tidy["teacher"] == teacher) & (tidy["student"] == student)]
    points: dict[str, list[tuple[float, float, float]]] = {}
    for curve in curve_order(set(rows["curve"])):
        part = rows[(rows["curve"] == curve) & rows["n"].gt(0)].sort_values("pct")
        points[curve] = [(float(p), float(m), 0.0 if math.isnan(s) else float(s))
                         for p, m, s in zip(part["pct"], part["mean"], part["std"], strict=True)]
    return points
