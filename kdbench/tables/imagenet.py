"""Table VII of the paper (ImageNet): rows Teacher, Student, then each method entry; a column per teacher →
student pair; top-1 as the paper shows it, and top-5 (which the paper leaves out) in a block of its own."""

from __future__ import annotations

import pandas as pd

from kdbench.tables.cells import Table, format_cell, mean_std, pairs, scratch_stats, teacher_stats
from kdbench.tables.method_pair import STUDENT_ROW, method_pair_table


def imagenet_table(frame: pd.DataFrame, metric: str = "last") -> Table:
    """Table VII: the method × pair grid of top-1, then the same grid of last-epoch top-5."""
    top1 = method_pair_table(frame, metric=metric)
    columns = pairs(frame)
    labels = frame[frame["teacher"].notna()].groupby("label")["method_order"].min().sort_values().index.tolist()
    tidy = []
    for teacher, student in columns:
        pair = f"{teacher} → {student}"
        runs = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]
        cells = {STUDENT_ROW: scratch_stats(frame, student, "last_top5")}
        cells.update({label: mean_std(runs[runs["label"] == label]["last_top5"]) for label in labels})
        tidy += [(row, pair, *stats) for row, stats in cells.items()]
    tidy_df = pd.DataFrame(tidy, columns=["row", "pair", "mean", "std", "n"])
    tidy_df.insert(2, "metric", "last top-5 (%)")
    if tidy_df["n"].sum() == 0:  # records from before top-5 was measured: the top-1 table alone
        return top1
    shown = tidy_df.assign(cell=[format_cell(m, s, n) for m, s, n in tidy_df[["mean", "std", "n"]].itertuples(
        index=False)])
    grid = shown.pivot(index="row", columns="pair", values="cell")
    order = [r for r in [STUDENT_ROW, *labels] if r in grid.index]
    grid = grid.loc[order, [f"{t} → {s}" for t, s in columns]]
    grid.index.name = "method"
    teachers = ", ".join(f"{t} {teacher_stats(frame, t, s)[0]:.2f}" for t, s in columns)
    body = grid.to_markdown(disable_numparse=True)
    markdown = (f"{top1.markdown}\n#### Top-5 (%)\n\n{body}\n\nlast-epoch top-5 accuracy (%); teachers' top-1: "
                f"{teachers}.\n")
    return Table(markdown=markdown, tidy=pd.concat([top1.tidy, tidy_df], ignore_index=True))

