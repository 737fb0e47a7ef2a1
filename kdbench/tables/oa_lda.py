"""Tables V and VI of the paper: each method as published ("OA") against with LR/DS ("LDA"), and Δ.

A run is "LDA" when it used Data Selection or Label Revision, "OA" otherwise. A method's group follows
from its LDA runs, as docs/methods.md §7 dictates: LDA by DS alone means a logit method ("Logits"),
LDA with LR a feature method ("Features"). Cells are mean ± std over seeds; Δ is the difference of means."""

from __future__ import annotations

import math

import pandas as pd

from kdbench.tables.cells import (
    SIGNIFICANT_NOTE,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    metric_column,
    pairs,
    scratch_stats,
    teacher_stats,
    welch_p,
)


def _teacher_line(frame: pd.DataFrame, columns: list[tuple[str, str]], column: str) -> list[str]:
    return [f"{teacher} ({format_cell(*teacher_stats(frame, teacher, student))}) → {student} "
            f"({format_cell(*scratch_stats(frame, student, column))})" for teacher, student in columns]


def oa_lda_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Tables V and VI: rows are methods grouped Logits / Features, columns OA, LDA, Δ per pair."""
    column = metric_column(frame, metric)
    columns = pairs(frame)
    distill = frame[frame["teacher"].notna()]
    labels = distill.groupby("label")["method_order"].min().sort_values().index.tolist()
    is_lda = distill["ds"] | distill["lr"]
    rows, tidy = [], []
    for group in ("Logits", "Features"):
        for label in labels:
            mine = distill[distill["label"] == label]
            lda_runs = mine[is_lda.loc[mine.index]]
            method_group = "Features" if lda_runs["lr"].any() else "Logits"
            if method_group != group:
                continue
            cells = [group, label]
            for teacher, student in columns:
                at = mine[(mine["teacher"] == teacher) & (mine["student"] == student)]
                lda_mask = is_lda.loc[at.index]
                oa, lda = mean_std(at[~lda_mask][column]), mean_std(at[lda_mask][column])
                change, p = delta(lda, oa), welch_p(lda, oa)
                cells += [format_cell(*oa), format_cell(*lda), format_delta(change, p)]
                pair = f"{teacher} → {student}"
                for variant, (mean, std, n), d, pv in (("OA", oa, math.nan, math.nan), ("LDA", lda, change, p)):
                    tidy.append({"group": group, "row": label, "pair": pair, "variant": variant,
                                 "mean": mean, "std": std, "n": n, "delta": d, "p_value": pv})
            rows.append(cells)
    header = ["Type", "Method"] + [h for t, s in columns for h in (f"{t} → {s} OA", "LDA", "Δ")]
    lines = ["Teacher (top-1) → student (from scratch): " + "; ".join(_teacher_line(frame, columns, column)), ""]
    lines.append(markdown(header, rows))
    n = int(distill.groupby(["label", "teacher", "student", "ds", "lr"])["seed"].nunique().max()) if len(distill) else 0
    lines += ["", f"OA: as published; LDA: with Data Selection (Logits) or Label Revision + Data Selection "
              f"(Features); Δ = LDA − OA. {metric} top-1 (%), mean ± std over up to {n} seeds; "
              f"derived from {len(frame)} run records. {SIGNIFICANT_NOTE}"]
    tidy_df = pd.DataFrame(tidy, columns=["group", "row", "pair", "variant", "mean", "std", "n", "delta", "p_value"])
    tidy_df.insert(4, "metric", f"{metric} top-1 (%)")
    return Table(markdown="\n".join(lines) + "\n", tidy=tidy_df)
