"""The ``teachers`` layout (beyond the paper, docs/methods.md §12): one student distilled from teachers of
growing strength, with KD and KD + LR + DS; does the gain hold when the teacher is barely better than the
student?"""

from __future__ import annotations

import math
from typing import TypedDict

import pandas as pd

from kdbench.contracts import SCRATCH_METHOD
from kdbench.tables.cells import (
    SIGNIFICANT_NOTE,
    Stats,
    Table,
    delta,
    format_cell,
    format_delta,
    markdown,
    mean_std,
    metric_column,
    pairs,
    teacher_stats,
    welch_p,
)
from kdbench.tables.paper_common import kd_lr_ds, plain_kd
from kdbench.tables.plots import add_caption, new_figure, note_empty, png_bytes, set_title


class TeacherRow(TypedDict):
    """One pair of :func:`teacher_rows`."""

    teacher: str
    student: str
    teacher_top1: float
    scratch: Stats
    kd: Stats
    ours: Stats
    kd_gain: float
    ours_gain: float
    ours_p: float


def teacher_rows(frame: pd.DataFrame, metric: str = "best") -> list[TeacherRow]:
    """Per pair, weakest teacher first: the teacher's accuracy, the student alone, KD, KD + LR + DS, the
    student's gain from KD and the gain of LR + DS over KD (with its p-value)."""
    column = metric_column(frame, metric)
    rows: list[TeacherRow] = []
    for teacher, student in pairs(frame):
        runs = frame[(frame["teacher"] == teacher) & (frame["student"] == student)]
        scratch = mean_std(frame[(frame["method"] == SCRATCH_METHOD) & (frame["student"] == student)][column])
        kd = mean_std(plain_kd(runs)[column])
        ours = mean_std(kd_lr_ds(runs)[column])
        rows.append({"teacher": teacher, "student": student, "teacher_top1": teacher_stats(frame, teacher, student)[0],
                     "scratch": scratch, "kd": kd, "ours": ours, "kd_gain": delta(kd, scratch),
                     "ours_gain": delta(ours, kd), "ours_p": welch_p(ours, kd)})
    return sorted(rows, key=lambda r: r["teacher_top1"] if not math.isnan(r["teacher_top1"]) else math.inf)


def teachers_table(frame: pd.DataFrame, metric: str = "best") -> Table:
    """The rows of :func:`teacher_rows` as a Markdown table and a tidy CSV."""
    rows = teacher_rows(frame, metric)
    header = ["teacher", "teacher top-1", "student", "KD", "KD+LR+DS", "KD gain over student", "Δ LR+DS over KD"]
    body: list[list[str]] = []
    tidy: list[dict[str, object]] = []
    for r in rows:
        scratch, kd, ours = r["scratch"], r["kd"], r["ours"]
        body.append([r["teacher"], f"{r['teacher_top1']:.2f}", format_cell(*scratch), format_cell(*kd),
                     format_cell(*ours), format_delta(r["kd_gain"]), format_delta(r["ours_gain"], r["ours_p"])])
        for name, stats in (("student", scratch), ("KD", kd), ("KD+LR+DS", ours)):
            tidy.append(_tidy(r, name, stats))
    student = ", ".join(sorted({str(r["student"]) for r in rows}))
    note = (f"{metric} top-1 (%) of {student}, mean ± std over seeds, teachers weakest first. {SIGNIFICANT_NOTE} "
            f"Derived from {len(frame)} run records; the plot teacher_gain.png shows the last column against the "
            "teacher's accuracy.")
    tidy_df = pd.DataFrame(tidy)
    return Table(markdown=markdown(header, body) + "\n\n" + note + "\n", tidy=tidy_df)


def _tidy(row: TeacherRow, name: str, stats: Stats) -> dict[str, object]:
    return {"teacher": row["teacher"], "teacher_top1": row["teacher_top1"], "row": name, "mean": stats[0],
            "std": stats[1], "n": stats[2], "ours_gain_over_kd": row["ours_gain"]}


def teacher_gain_png(frame: pd.DataFrame, metric: str = "best") -> bytes:
    """The gain of KD + LR + DS over KD (points, with the KD gain over the student as a second series)
    against the teacher's top-1: does the paper's gain shrink as the teacher nears the student?"""
    rows = [r for r in teacher_rows(frame, metric) if not math.isnan(r["teacher_top1"])]
    figure, ax = new_figure()
    x = [r["teacher_top1"] for r in rows]
    ours = [r["ours_gain"] for r in rows]
    kd = [r["kd_gain"] for r in rows]
    if any(not math.isnan(v) for v in ours + kd):
        ax.plot(x, ours, "o-", label="KD+LR+DS − KD")
        ax.plot(x, kd, "s--", label="KD − student")
        for r in rows:
            ax.annotate(str(r["teacher"]), (r["teacher_top1"], r["ours_gain"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.legend(fontsize=8)
    else:
        note_empty(ax, "no teacher with both KD and KD+LR+DS runs")
    ax.set_xlabel("teacher top-1 (%)")
    ax.set_ylabel(f"gain in {metric} top-1 (points)")
    set_title(ax, "Gain of LR + DS over KD as the teacher gets stronger")
    add_caption(figure, f"Each point is one teacher (mean over seeds); derived from {len(frame)} run records.")
    return png_bytes(figure)
