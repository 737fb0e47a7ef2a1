"""The ``estimators`` layout (beyond the paper, docs/methods.md §12): which data-value estimator selects
best for KD + DS and KD + LR + DS, at what scoring cost, and, on a dataset with label noise, how well its
scores flag the flipped labels (AUROC)."""

from __future__ import annotations

import math

import pandas as pd

from kdbench.tables.cells import (
    DASH,
    SIGNIFICANT_NOTE,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    metric_column,
    welch_p,
)
from kdbench.tables.noise import kd_baseline
from kdbench.tables.paper_common import KD


def estimator_names(runs: pd.DataFrame) -> pd.Series:
    """Each DS run's estimator, with the parameters that tell apart the runs of the same estimator
    (``influence score=self``); ``random`` for a random selection. A ``seed`` is not one of them: a seeded
    estimator follows the run's seed, and its runs over seeds are one row."""
    def params_text(row: pd.Series, varying: set[str]) -> str:
        params = row["ds_params"] or {}
        shown = " ".join(f"{k}={params[k]}" for k in sorted(varying) if k in params)
        return f"{row['ds_estimator']} {shown}".strip()

    names = []
    for _, row in runs.iterrows():
        if not isinstance(row["ds_estimator"], str):
            names.append("random")
            continue
        same = runs[runs["ds_estimator"] == row["ds_estimator"]]["ds_params"]
        keys = {k for p in same if p for k in p}
        varying = {k for k in keys if k != "seed" and len({repr((p or {}).get(k)) for p in same}) > 1}
        names.append(params_text(row, varying))
    return pd.Series(names, index=runs.index, dtype=object)


def estimators_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Rows: estimators, best KD + LR + DS first; columns: accuracy and Δ over KD of KD + DS and of
    KD + LR + DS, the scoring seconds and, with label noise, the detection AUROC."""
    column = metric_column(frame, metric)
    ds = frame[frame["ds"].astype(bool) & (frame["method"] == KD)].copy()
    ds["estimator"] = estimator_names(ds)
    base = mean_std(kd_baseline(frame)[column])
    noisy = bool((frame["noise_rate"].fillna(0.0) > 0).any())
    records = []
    for name, runs in ds.groupby("estimator", sort=False):
        row: dict[str, object] = {"estimator": name}
        for arm, arm_runs in (("KD+DS", runs[~runs["lr"].astype(bool)]), ("KD+LR+DS", runs[runs["lr"].astype(bool)])):
            stats = mean_std(arm_runs[column])
            row[arm] = stats
            row[f"Δ {arm}"] = (delta(stats, base), welch_p(stats, base))
        row["scoring s"] = runs["score_seconds"].dropna().mean() if runs["score_seconds"].notna().any() else math.nan
        row["AUROC"] = runs["detection_auroc"].dropna().mean() if runs["detection_auroc"].notna().any() else math.nan
        records.append(row)
    records.sort(key=lambda r: -(r["KD+LR+DS"][0] if not math.isnan(r["KD+LR+DS"][0]) else -math.inf))
    header = ["estimator", "KD+DS", "Δ", "KD+LR+DS", "Δ", "scoring s", *(["AUROC"] if noisy else [])]
    body, tidy = [], []
    for r in records:
        cells = [r["estimator"]]
        for arm in ("KD+DS", "KD+LR+DS"):
            cells += [format_cell(*r[arm]), format_delta(*r[f"Δ {arm}"])]
            tidy.append({"estimator": r["estimator"], "arm": arm, "mean": r[arm][0], "std": r[arm][1], "n": r[arm][2],
                         "delta_vs_kd": r[f"Δ {arm}"][0], "score_seconds": r["scoring s"], "auroc": r["AUROC"]})
        cells.append(f"{r['scoring s']:.3f}" if not math.isnan(r["scoring s"]) else DASH)
        if noisy:
            cells.append(f"{r['AUROC']:.3f}" if not math.isnan(r["AUROC"]) else DASH)
        body.append(cells)
    note = (f"{metric} top-1 (%), mean ± std over seeds; Δ over vanilla KD ({format_cell(*base)}). Scoring "
            "seconds: the estimator on the trained teacher, once per teacher."
            + (" AUROC: how well the scores flag the flipped training labels (0.5 is chance)." if noisy else "")
            + f" {SIGNIFICANT_NOTE} Derived from {len(frame)} run records.")
    tidy_df = pd.DataFrame(tidy)
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    return Table(markdown=markdown(header, body) + "\n\n" + note + "\n", tidy=tidy_df)
