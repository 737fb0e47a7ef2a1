"""The ``estimators`` layout (beyond the paper, docs/methods.md §12): which data-value estimator selects
best for KD + DS and KD + LR + DS, at what scoring cost, and, on a dataset with label noise, how well its
scores flag the flipped labels (AUROC)."""

from __future__ import annotations

import math
from typing import Any

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
from kdbench.tables.paper_common import KD, plain_kd


def estimator_names(runs: pd.DataFrame) -> pd.Series:
    """Each DS run's estimator, with the parameters that tell apart the runs of the same estimator
    (``influence score=self``); ``random`` for a random selection. A ``seed`` is not one of them: a seeded
    estimator follows the run's seed, and its runs over seeds are one row."""
    params = runs["ds_params"].map(lambda p: p or {})
    varying: dict[str, list[str]] = {}
    for name, group in params.groupby(runs["ds_estimator"]):
        keys = {k for p in group for k in p if k != "seed"}
        varying[name] = sorted(k for k in keys if len({repr(p.get(k)) for p in group}) > 1)

    def text(name: object, p: dict[str, Any]) -> str:
        if not isinstance(name, str):
            return "random"
        return " ".join([name, *(f"{k}={p[k]}" for k in varying[name] if k in p)])

    return pd.Series([text(n, p) for n, p in zip(runs["ds_estimator"], params, strict=True)], index=runs.index,
                     dtype=object)


#: The noise-detection columns (with label noise), by the frame column each is the mean of.
DETECTION = {"AUROC": "detection_auroc", "precision@k": "detection_precision", "found@10%": "detection_found_at_10"}


def estimators_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Rows: estimators, best KD + LR + DS first; columns: accuracy and Δ over KD of KD + DS and of
    KD + LR + DS, the scoring seconds and, with label noise, the detection figures (AUROC, precision@k, the
    share of the flipped labels found in the most suspicious 10%)."""
    column = metric_column(frame, metric)
    ds = frame[frame["ds"] & (frame["method"] == KD)].copy()
    ds["estimator"] = estimator_names(ds)
    base = mean_std(plain_kd(frame)[column])
    noisy = bool((frame["noise_rate"].fillna(0.0) > 0).any())
    records = []
    for name, runs in ds.groupby("estimator", sort=False):
        row: dict[str, Any] = {"estimator": name}  # a table row: stats, (Δ, p) pairs and numbers by column
        for arm, arm_runs in (("KD+DS", runs[~runs["lr"]]), ("KD+LR+DS", runs[runs["lr"]])):
            stats = mean_std(arm_runs[column])
            row[arm] = stats
            row[f"Δ {arm}"] = (delta(stats, base), welch_p(stats, base))
        row["scoring s"] = runs["score_seconds"].dropna().mean() if runs["score_seconds"].notna().any() else math.nan
        for name_, col in DETECTION.items():
            row[name_] = runs[col].dropna().mean() if runs[col].notna().any() else math.nan
        records.append(row)
    records.sort(key=lambda r: -(r["KD+LR+DS"][0] if not math.isnan(r["KD+LR+DS"][0]) else -math.inf))
    header = ["estimator", "KD+DS", "Δ", "KD+LR+DS", "Δ", "scoring s", *(list(DETECTION) if noisy else [])]
    body, tidy = [], []
    for r in records:
        cells = [r["estimator"]]
        for arm in ("KD+DS", "KD+LR+DS"):
            cells += [format_cell(*r[arm]), format_delta(*r[f"Δ {arm}"])]
            tidy.append({"estimator": r["estimator"], "arm": arm, "mean": r[arm][0], "std": r[arm][1], "n": r[arm][2],
                         "delta_vs_kd": r[f"Δ {arm}"][0], "score_seconds": r["scoring s"], "auroc": r["AUROC"],
                         "precision_at_k": r["precision@k"], "found_at_10": r["found@10%"]})
        cells.append(f"{r['scoring s']:.3f}" if not math.isnan(r["scoring s"]) else DASH)
        if noisy:
            cells += [f"{r['AUROC']:.3f}" if not math.isnan(r["AUROC"]) else DASH,
                      f"{r['precision@k']:.3f}" if not math.isnan(r["precision@k"]) else DASH,
                      f"{100 * r['found@10%']:.1f}%" if not math.isnan(r["found@10%"]) else DASH]
        body.append(cells)
    note = (f"{metric} top-1 (%), mean ± std over seeds; Δ over vanilla KD ({format_cell(*base)}). Scoring "
            "seconds: the estimator on the trained teacher, once per teacher."
            + (" AUROC: how well the scores flag the flipped training labels (0.5 is chance); precision@k: the "
               "share flipped among the k most suspicious, k the number flipped; found@10%: the share of the "
               "flipped labels among the 10% most suspicious (random finds 10%)." if noisy else "")
            + f" {SIGNIFICANT_NOTE} Derived from {len(frame)} run records.")
    tidy_df = pd.DataFrame(tidy)
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    return Table(markdown=markdown(header, body) + "\n\n" + note + "\n", tidy=tidy_df)
