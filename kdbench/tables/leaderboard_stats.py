"""The leaderboard's statistics on whole columns at once: Welch's t-test, the 95% confidence interval over
seeds, and ranks in which rows that the seeds cannot tell apart from the best share its rank.

Why arrays: a grown publication has thousands of rows, and a scipy call per row (what ``cells.welch_p``
does for the suite tables) costs more than the rest of the board. These functions compute the same
numbers as ``cells.welch_p`` and ``cells.mean_std`` for every row in one call; the tests check them
against the scalar ones and against values worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from kdbench.tables.cells import SIGNIFICANCE

CONFIDENCE = 0.95

TIE_NOTE = (f"Rank: within a benchmark and pair, among the distillation methods (the student from scratch is a "
            f"reference, not ranked). A row whose Welch p-value against the best row's seeds is ≥ {SIGNIFICANCE:g} is "
            "tied with the best: it shares rank 1 and is marked \"=\", not ranked above or below it; the other rows "
            "rank by mean (1 + the rows above them). A row or a best row with one seed cannot be tested and ranks by "
            "its mean.")


def welch_p(m1: ArrayLike, s1: ArrayLike, n1: ArrayLike, m2: ArrayLike, s2: ArrayLike, n2: ArrayLike) -> np.ndarray:
    """Two-sided p of Welch's t-test from summary statistics, elementwise; NaN where ``cells.welch_p`` gives NaN
    (fewer than 2 runs on a side, a missing value, or no spread on either side)."""
    a1, d1, c1, a2, d2, c2 = (np.asarray(a, dtype=float) for a in (m1, s1, n1, m2, s2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v1, v2 = d1 * d1 / c1, d2 * d2 / c2
        t = (a1 - a2) / np.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1 * v1 / (c1 - 1) + v2 * v2 / (c2 - 1))  # Welch–Satterthwaite
        p = 2 * scipy_stats.t.sf(np.abs(t), df)
    valid = (c1 >= 2) & (c2 >= 2) & np.isfinite(a1) & np.isfinite(d1) & np.isfinite(a2) & np.isfinite(d2)
    valid &= (v1 + v2) > 0
    out: np.ndarray = np.where(valid, p, np.nan)
    return out


def confidence_interval(mean: ArrayLike, std: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The 95% confidence interval of the mean over seeds, Student's t with n − 1 degrees of freedom; NaN for one
    seed (no interval can be given)."""
    m, s, c = (np.asarray(a, dtype=float) for a in (mean, std, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(c >= 2, scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, c - 1) * s / np.sqrt(c), np.nan)
    low: np.ndarray = m - half
    high: np.ndarray = m + half
    return low, high


def tied_ranks(frame: pd.DataFrame, groups: list[str], mean: str = "mean", std: str = "std",
               n: str = "n") -> pd.DataFrame:
    """Per row of ``frame``: ``rank``, ``tied`` and ``p_vs_best`` within its group (see :data:`TIE_NOTE`).

    The best row of a group has the highest mean (the first in frame order among equal means). ``tied`` is True
    for a row tested not different from the best (p ≥ 0.05), and for the best row when another row is tied
    with it. A row without a mean has no rank. Returns a frame with the same index."""
    out = pd.DataFrame({"rank": np.nan, "tied": False, "p_vs_best": np.nan}, index=frame.index)
    ranked = frame[np.isfinite(frame[mean].astype(float))]
    if ranked.empty:
        return out
    grouped = ranked.groupby(groups, sort=False, dropna=False)
    best_index = grouped[mean].transform("idxmax").to_numpy()
    at_best = ranked.loc[best_index]
    p = welch_p(ranked[mean], ranked[std], ranked[n], at_best[mean], at_best[std], at_best[n])
    is_best = best_index == ranked.index.to_numpy()
    p = np.where(is_best, np.nan, p)
    tied_with_best = ~is_best & (p >= SIGNIFICANCE)
    above = grouped[mean].rank(method="min", ascending=False).to_numpy()  # 1 + rows with a higher mean
    ties = pd.Series(tied_with_best, index=ranked.index).groupby(best_index).transform("any").to_numpy()
    out.loc[ranked.index, "rank"] = np.where(is_best | tied_with_best, 1.0, above)
    out.loc[ranked.index, "tied"] = tied_with_best | (is_best & ties)
    out.loc[ranked.index, "p_vs_best"] = p
    return out


def paired_p(differences: np.ndarray) -> float:
    """Two-sided p of the paired t-test that the mean of ``differences`` (one per pair) is 0; NaN with fewer than 2
    differences or none of spread."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2 or float(np.std(d, ddof=1)) == 0.0:
        return float("nan")
    t = float(np.mean(d)) / (float(np.std(d, ddof=1)) / np.sqrt(d.size))
    return float(2 * scipy_stats.t.sf(abs(t), d.size - 1))
