"""Figures derived from records, drawn with matplotlib's object API (no global backend is switched)."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def time_accuracy_png(frame: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> bytes:
    """The paper's Fig. 3 for one pair: one point per table row label (and per OA/LDA variant), mean wall
    time (h) against mean top-1 over seeds.

    Wall time is the run's own training + evaluation time as recorded, so it includes the teacher's
    forward passes and any extra modules: the cost that the paper's Fig. 3 compares.
    """
    runs = frame[(frame["teacher"] == teacher) & (frame["student"] == student)].copy()
    runs["variant"] = runs["label"] + (runs["ds"] | runs["lr"]).map({True: " (LDA)", False: ""})
    labelled = runs["label"].str.contains(r"\+|LR|DS")  # labels that already say what they are
    runs.loc[labelled, "variant"] = runs.loc[labelled, "label"]
    points = runs.groupby("variant").agg(hours=("wall_time_s", "mean"), top1=(f"{metric}_top1", "mean"),
                                         order=("method_order", "min")).sort_values("order")
    points["hours"] = points["hours"] / 3600.0
    figure = Figure(figsize=(6.4, 4.4), dpi=120)
    ax = figure.add_subplot()
    ax.scatter(points["hours"], points["top1"])
    for name, row in points.iterrows():
        ax.annotate(name, (row["hours"], row["top1"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xlabel("training time per run (hours, mean over seeds)")
    ax.set_ylabel(f"{metric} top-1 (%)")
    ax.set_title(f"{teacher} → {student}: accuracy vs training time", fontsize=10)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return png_bytes(figure)


def score_histogram_png(frame: pd.DataFrame, title: str) -> bytes:
    """Score distribution, split by whether the teacher is right: where the two overlap, DS cannot tell
    them apart."""
    figure = Figure(figsize=(6, 4), dpi=120)
    ax = figure.add_subplot()
    for correct, name in ((True, "teacher right"), (False, "teacher wrong")):
        values = frame.loc[frame["teacher_correct"] == correct, "score"]
        if len(values):
            ax.hist(values, bins=50, alpha=0.6, label=f"{name} ({len(values)})")
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    ax.legend()
    figure.tight_layout()
    return png_bytes(figure)
