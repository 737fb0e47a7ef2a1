"""Table IV of the paper: vanilla KD against KD + LR + DS ("Our") on every pair."""

from __future__ import annotations

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
from kdbench.tables.paper_common import KD


def vanilla_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """Table IV: Teacher, Student, Vanilla KD, Our (KD + LR + DS) and Δ for every pair."""
    column = metric_column(frame, metric)
    columns = pairs(frame)
    kd = frame[(frame["method"] == KD) & frame["teacher"].notna()]
    header = ["", *[f"{t} → {s}" for t, s in columns]]
    teacher_row, student_row, vanilla_row, ours_row = ["Teacher"], ["Student"], ["Vanilla KD"], ["Our"]
    delta_row = ["Δ"]
    tidy = []
    for teacher, student in columns:
        runs = kd[(kd["teacher"] == teacher) & (kd["student"] == student)]
        stats = {
            "Teacher": teacher_stats(frame, teacher, student),
            "Student": scratch_stats(frame, student, column),
            "Vanilla KD": mean_std(runs[~runs["ds"] & ~runs["lr"]][column]),
            "Our": mean_std(runs[runs["ds"] & runs["lr"]][column]),
        }
        for row, cell in zip((teacher_row, student_row, vanilla_row, ours_row), stats.values(), strict=True):
            row.append(format_cell(*cell))
        ours, vanilla = stats["Our"], stats["Vanilla KD"]
        delta_row.append(format_delta(delta(ours, vanilla), welch_p(ours, vanilla)))
        tidy += [{"row": k, "pair": f"{teacher} → {student}", "mean": v[0], "std": v[1], "n": v[2]}
                 for k, v in stats.items()]
    body = markdown(header, [teacher_row, student_row, vanilla_row, ours_row, delta_row])
    note = (f"Our = KD + Label Revision + Data Selection; Δ = Our − Vanilla KD. {metric} top-1 (%), "
            f"mean ± std over seeds; derived from {len(frame)} run records. {SIGNIFICANT_NOTE}")
    tidy_df = pd.DataFrame(tidy, columns=["row", "pair", "mean", "std", "n"])
    tidy_df.insert(2, "metric", f"{metric} top-1 (%)")
    return Table(markdown=body + "\n\n" + note + "\n", tidy=tidy_df)
