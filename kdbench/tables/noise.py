"""The ``noise`` layout (beyond the paper, docs/methods.md §12): methods × label-noise rates, and each
method's Δ over vanilla KD at every rate, so one reads whether LR, DS and LR+DS keep their gain when a
fraction of the training labels is wrong."""

from __future__ import annotations

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.tables.cells import (
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
from kdbench.tables.paper_common import plain_kd


def rate_name(rate: float) -> str:
    return f"{100 * rate:g}% noise"


def noise_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Rows: Teacher (trained on the noisy labels), then each method entry; a column per noise rate; then Δ
    over vanilla KD per rate (Welch's t-test over seeds)."""
    column = metric_column(frame, metric)
    rates = sorted(frame["noise_rate"].fillna(0.0).unique())
    labels = frame.groupby("label")["method_order"].min().sort_values().index.tolist()
    header = ["", *[rate_name(r) for r in rates]]
    teacher_row, rows, delta_rows, tidy = ["Teacher"], [], [], []
    for rate in rates:
        at = frame[frame["noise_rate"].fillna(0.0) == rate]
        teacher = mean_std(at.drop_duplicates("teacher")["teacher_top1"]) if at["teacher_top1"].notna().any() \
            else (float("nan"), float("nan"), 0)
        teacher_row.append(format_cell(teacher[0], 0.0, min(teacher[2], 1)))
        tidy.append({"row": "Teacher", "noise_rate": rate, "mean": teacher[0], "std": 0.0, "n": teacher[2]})
    baseline = plain_kd(frame)
    kd_label = baseline["label"].iloc[0] if len(baseline) else None
    for label in labels:
        row, drow = [label], [f"Δ {label} − {kd_label}"]
        for rate in rates:
            at = frame[frame["noise_rate"].fillna(0.0) == rate]
            stats = mean_std(at[at["label"] == label][column])
            base = mean_std(plain_kd(at)[column])
            row.append(format_cell(*stats))
            drow.append(format_delta(delta(stats, base), welch_p(stats, base)))
            tidy.append({"row": label, "noise_rate": rate, "mean": stats[0], "std": stats[1], "n": stats[2],
                         "delta_vs_kd": delta(stats, base)})
        rows.append(row)
        runs = frame[frame["label"] == label]
        if kd_label is not None and label != kd_label and not (runs["method"] == SCRATCH_METHOD).all():
            delta_rows.append(drow)
    body = markdown(header, [teacher_row, *rows])
    deltas = markdown(["Δ over vanilla KD", *header[1:]], delta_rows) if delta_rows else ""
    note = (f"{metric} top-1 (%) on the clean test set, mean ± std over seeds; training and validation labels "
            f"flipped at each rate, the teacher trained on them too. {SIGNIFICANT_NOTE} "
            f"Derived from {len(frame)} run records.")
    tidy_df = pd.DataFrame(tidy)
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    return Table(markdown=body + ("\n\n" + deltas if deltas else "") + "\n\n" + note + "\n", tidy=tidy_df)
