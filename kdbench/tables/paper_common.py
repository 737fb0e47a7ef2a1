"""What the paper-layout tables share: normalised records, held settings, one section per pair.

A paper table varies one thing and holds the rest at the paper's defaults (DS: the 80% highest-influence
samples go to the teacher; LR: the "paper" revision with η = 0.8, λ1 = λ2 = 1; both defined once in
``kdbench.contracts``). When a frame mixes several values of a setting that a table holds fixed (say an
η sweep next to a λ sweep), each table keeps the paper's default value if any run has it, else the
value most runs share, so that no cell averages runs of different configurations; the note under the
table counts the records of the pair it left out. Label Revision records that omit η or λ are read at
the revision's defaults."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kdbench.contracts.names import (
    DEFAULT_ESTIMATOR,
    DEFAULT_ETA,
    DEFAULT_FRACTION,
    DEFAULT_LAMBDA1,
    DEFAULT_LAMBDA2,
    DEFAULT_STRATEGY,
)
from kdbench.tables.cells import DASH, Stats, Table, format_cell, mean_std, metric_column, pairs

KD = "kd"
MSE_KD = "mse_kd"
CHECK, CROSS = "✓", "×"

DS_COLUMNS = ("ds_estimator", "ds_fraction", "ds_order")
LR_COLUMNS = ("lr_name", "lr_eta", "lr_lambda1", "lr_lambda2")
PAPER_DS = {"ds_estimator": DEFAULT_ESTIMATOR, "ds_fraction": DEFAULT_FRACTION, "ds_order": "highest"}
PAPER_LR = {"lr_name": DEFAULT_STRATEGY, "lr_eta": DEFAULT_ETA, "lr_lambda1": DEFAULT_LAMBDA1,
            "lr_lambda2": DEFAULT_LAMBDA2}

PAPER_NAMES = {
    "kd": "KD", "pkt": "PKT", "fitnet": "FitNet", "vid": "VID", "srrl": "SRRL", "semckd": "SemCKD",
    "crd": "CRD", "dkd": "DKD", "ctkd": "CTKD", "dtd_la": "DTD-LA", "dtdla": "DTD-LA",
}

DEFAULT_COLUMNS: dict[str, bool | int | None] = {
    "method": None, "teacher": None, "student": None, "seed": None, "pair_order": 0, "method_order": 0,
    "ds": False, "lr": False, "ds_mode": None, **dict.fromkeys(DS_COLUMNS + LR_COLUMNS),
}


@dataclass(frozen=True)
class Section:
    """One teacher → student pair's part of a table: its body (without heading/note) and tidy rows."""

    body: str
    tidy: pd.DataFrame
    used: int  # run records that went into some cell


def plain_kd(rows: pd.DataFrame) -> pd.DataFrame:
    """Vanilla KD: the KD runs without Data Selection or Label Revision (the baseline of every Δ over KD)."""
    kd: pd.DataFrame = rows[(rows["method"] == KD) & ~rows["ds"] & ~rows["lr"]]
    return kd


def kd_lr_ds(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper's method: KD with Label Revision and Data Selection."""
    kd: pd.DataFrame = rows[(rows["method"] == KD) & rows["ds"] & rows["lr"]]
    return kd


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value: Any) -> float | None:
    """Round so that 0.8 read from JSON and 0.8 typed in a test compare equal."""
    return None if is_missing(value) else round(float(value), 10)


def _eta(value: Any) -> float | str | None:
    """η is a number or the name of a per-sample rule ("ptmax"/"pttar"); numeric strings become numbers."""
    if is_missing(value):
        return None
    try:
        return round(float(value), 10)
    except (TypeError, ValueError):
        return str(value).strip().lower()


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column the paper layouts read, flags as bools, settings rounded and defaults filled.

    Missing η/λ on a Label Revision run means the revision ran at its defaults, so they are filled in;
    otherwise a suite that relies on defaults would not line up with one that spells them out.
    """
    data: pd.DataFrame = frame.copy()
    for column, default in DEFAULT_COLUMNS.items():
        if column not in data.columns:
            data[column] = default
    data["ds"] = data["ds"].map(lambda v: False if is_missing(v) else bool(v)).astype(bool)
    data["lr"] = data["lr"].map(lambda v: False if is_missing(v) else bool(v)).astype(bool)
    for column in ("ds_fraction", "lr_lambda1", "lr_lambda2"):
        data[column] = data[column].map(_number).astype(object)
    data["lr_eta"] = data["lr_eta"].map(_eta).astype(object)
    for column in ("ds_estimator", "ds_order", "lr_name", "teacher", "method"):
        data[column] = data[column].map(lambda v: None if is_missing(v) else str(v)).astype(object)
    for column in ("lr_lambda1", "lr_lambda2"):
        paper_value = PAPER_LR[column]
        filled = [paper_value if lr and is_missing(v) else v for lr, v in zip(data["lr"], data[column], strict=True)]
        data[column] = pd.Series(filled, index=data.index, dtype=object)
    paper = data["lr"] & (data["lr_name"] == DEFAULT_STRATEGY)
    filled = [DEFAULT_ETA if p and is_missing(v) else v for p, v in zip(paper, data["lr_eta"], strict=True)]
    data["lr_eta"] = pd.Series(filled, index=data.index, dtype=object)
    return data


def equals(series: pd.Series, value: object) -> pd.Series:
    """Element-wise equality that also works on object columns mixing numbers, strings and None."""
    return series.map(lambda v: v == value).astype(bool)


def matching(rows: pd.DataFrame, settings: dict[str, object]) -> pd.Series:
    mask: pd.Series = pd.Series(True, index=rows.index)
    for column, value in settings.items():
        mask &= equals(rows[column], value)
    return mask


def held_settings(rows: pd.DataFrame, preferred: dict[str, object]) -> dict[str, object]:
    """The value each setting is held at: the paper's if some run has it, else the most common one.

    Columns are decided in order, each among the runs matching the earlier choices, so the result is a
    configuration that actually exists. Ties go to the value seen first (Counter keeps insertion order).
    """
    held: dict[str, object] = {}
    for column, paper_value in preferred.items():
        values = [v for v in rows[column] if not is_missing(v)]
        if not values:
            continue
        held[column] = paper_value if paper_value in values else Counter(values).most_common(1)[0][0]
        rows = rows[equals(rows[column], held[column])]
    return held


def pair_rows(data: pd.DataFrame, teacher: str, student: str) -> pd.DataFrame:
    pair: pd.DataFrame = data[equals(data["teacher"], teacher) & equals(data["student"], student)]
    return pair


def num_text(value: object) -> str:
    """Setting values as the paper prints them: 0.1, 1, 10, 0.85."""
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def percent(cell: str) -> str:
    return cell if cell == DASH else f"{cell}%"


def stat_record(**fields: object) -> Callable[[Stats], dict[str, object]]:
    """A tidy row: the fields that identify the cell, then its mean, std and n."""
    return lambda stats: {**fields, "mean": stats[0], "std": stats[1], "n": stats[2]}


def tidy_frame(records: list[dict[str, object]], columns: list[str]) -> pd.DataFrame:
    tidy: pd.DataFrame = pd.DataFrame(records, columns=columns)
    return tidy


def configs(rows: pd.DataFrame, columns: Iterable[str]) -> set[tuple[object, ...]]:
    """The distinct combinations of ``columns`` among ``rows`` (missing values as None)."""
    rows_of_values = rows[list(columns)].itertuples(index=False)
    return {tuple(None if is_missing(v) else v for v in values) for values in rows_of_values}


def _seed_range(tidy: pd.DataFrame) -> str:
    counts = [int(n) for n in tidy["n"] if n > 0]
    if not counts:
        return "0 seeds"
    low, high = min(counts), max(counts)
    return f"{high} seed{'s' if high != 1 else ''}" if low == high else f"{low}–{high} seeds"


def _note(metric: str, section: Section, pair_records: int) -> str:
    """State what a cell is and where it came from, so a reader can tell a mean of 3 from a single run."""
    note = (
        f"Acc(%) = {metric} top-1 accuracy (%), mean ± std over {_seed_range(section.tidy)} "
        f"(a single run shows a plain number, no runs \"{DASH}\"); derived from {section.used} run records."
    )
    left_out = pair_records - section.used
    if left_out:
        note += f" {left_out} other record(s) of this pair are not part of this layout."
    return note


def render_by_pair(
    frame: pd.DataFrame,
    metric: str,
    title: str,
    build: Callable[[pd.DataFrame, str], Section],
    row_columns: list[str],
    value_columns: tuple[str, ...] = ("mean", "std", "n"),
) -> Table:
    """Render ``build`` once per teacher → student pair that has runs for it; the paper has one pair, a suite
    may have more."""
    data = prepare(frame)
    column = metric_column(data, metric) if len(data) else ""
    parts, tidies = [], []
    for teacher, student in pairs(data):
        rows = pair_rows(data, teacher, student)
        section = build(rows, column)
        if not section.used:
            continue  # a pair with none of this table's runs (another part of a combined suite)
        heading = f"### {title} — teacher {teacher}, student {student}"
        parts.append(f"{heading}\n\n{section.body}\n\n{_note(metric, section, len(rows))}\n")
        tidies.append(section.tidy.assign(teacher=teacher, student=student, metric=f"{metric} top-1 (%)"))
    columns = ["teacher", "student", *row_columns, *value_columns, "metric"]
    if not parts:
        return Table(markdown=f"### {title}\n\nNo run records for this layout.\n", tidy=pd.DataFrame(columns=columns))
    tidy = pd.concat(tidies, ignore_index=True)[columns]
    return Table(markdown="\n".join(parts), tidy=tidy)


def sweep_runs(rows: pd.DataFrame, lr_preferred: dict[str, object]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(KD + DS + LR runs at one DS setting and the held LR settings, DS-only KD at that DS setting).

    The baseline must use the same DS setting as the sweep, or Δ-by-eye against it would mix two changes.
    """
    kd = rows[rows["method"] == KD]
    runs, baseline = kd[kd["ds"] & kd["lr"]], kd[kd["ds"] & ~kd["lr"]]
    ds_held = held_settings(runs if len(runs) else baseline, PAPER_DS)
    runs, baseline = runs[matching(runs, ds_held)], baseline[matching(baseline, ds_held)]
    return runs[matching(runs, held_settings(runs, lr_preferred))], baseline


def baseline_line(baseline: Stats) -> str:
    return f"Baseline: {percent(format_cell(*baseline))} (KD with DS only)"


def sweep_row(runs: pd.DataFrame, swept: str, column: str) -> list[tuple[object, Stats]]:
    """(value, stats) per distinct value of ``swept``, in ascending order."""
    values = sorted({v for v in runs[swept] if not is_missing(v)})
    return [(v, mean_std(runs[equals(runs[swept], v)][column])) for v in values]
