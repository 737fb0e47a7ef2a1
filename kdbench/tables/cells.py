"""What every table is made of: cells (mean ± std over seeds), deltas, pair order and Markdown.

Defined once here and used by every layout, so a cell, a Δ and the order of pairs mean the same thing
in every table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import pandas as pd
from scipy import stats as scipy_stats
from tabulate import tabulate

from kdbench.contracts import SCRATCH_METHOD

DASH = "–"
SIGNIFICANCE = 0.05  # a Δ over seeds is marked "*" when Welch's t-test gives p below this
SIGNIFICANT_NOTE = "* p < 0.05 (Welch's t-test over seeds)."

Stats = tuple[float, float, int]  # mean, sample std, number of runs


@dataclass(frozen=True)
class Table:
    markdown: str
    tidy: pd.DataFrame  # one row per cell: what identifies it, then mean, std, n


def mean_std(values: pd.Series) -> Stats:
    values = values.dropna().astype(float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    return float(values.mean()), float(values.std(ddof=1)) if n > 1 else 0.0, n


def format_cell(mean: float, std: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return DASH
    return f"{mean:.2f}" if n == 1 else f"{mean:.2f} ± {std:.2f}"


def delta(stats: Stats, base: Stats) -> float:
    """Difference of means, NaN when either side has no runs."""
    if stats[2] == 0 or base[2] == 0 or math.isnan(stats[0]) or math.isnan(base[0]):
        return math.nan
    return stats[0] - base[0]


def welch_p(stats: Stats, base: Stats) -> float:
    """Two-sided p-value of Welch's t-test that two groups of runs have the same mean, from their summary
    statistics (mean, sample std, n). NaN when a group has fewer than 2 runs or both have no spread."""
    (m1, s1, n1), (m2, s2, n2) = stats, base
    if n1 < 2 or n2 < 2 or any(math.isnan(v) for v in (m1, s1, m2, s2)):
        return math.nan
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0:
        return math.nan
    t = (m1 - m2) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))  # Welch–Satterthwaite
    return float(2 * scipy_stats.t.sf(abs(t), df))


def format_delta(value: float, p: float = math.nan) -> str:
    """"+1.20", with "*" when the difference is significant over seeds (p < 0.05)."""
    if math.isnan(value):
        return DASH
    return f"{value:+.2f}" + ("*" if p < SIGNIFICANCE else "")


def metric_column(frame: pd.DataFrame, metric: str) -> str:
    column = f"{metric}_top1"
    if column not in frame.columns:
        raise ValueError(f"unknown metric {metric!r}: the frame has no {column!r} column (use 'best' or 'last')")
    return column


def pairs(data: pd.DataFrame) -> list[tuple[str, str]]:
    """Teacher → student pairs in suite order (pair_order, then first appearance)."""
    distill = data[data["teacher"].notna()]
    order = distill.groupby(["teacher", "student"], sort=False)["pair_order"].min()
    # cast: the keys of this two-level index are (teacher, student) names; pandas-stubs says Hashable
    return [cast(tuple[str, str], pair) for pair, _ in sorted(order.items(), key=lambda item: item[1])]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """Pipe table with cells kept verbatim (tabulate would otherwise print "75.00" as "75")."""
    return tabulate(rows, headers=header, tablefmt="pipe", disable_numparse=True)


def teacher_stats(frame: pd.DataFrame, teacher: str, student: str) -> Stats:
    """A pair's teacher accuracy: one teacher per pair, recorded identically in each of its runs."""
    accuracy = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]["teacher_top1"].dropna()
    return (float(accuracy.iloc[0]), 0.0, 1) if len(accuracy) else (math.nan, math.nan, 0)


def scratch_stats(frame: pd.DataFrame, student: str, column: str) -> Stats:
    """The student trained from scratch (no teacher): shared by every pair with that student."""
    scratch = frame[frame["teacher"].isna() & (frame["method"] == SCRATCH_METHOD)]
    return mean_std(scratch[scratch["student"] == student][column])
