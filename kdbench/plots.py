"""Accuracy against training time per method for a teacher/student pair (the paper's Fig. 3), from records."""

from __future__ import annotations

import io

import pandas as pd


def time_accuracy_png(frame: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> bytes:
    """One point per table row label (and per OA/LDA variant): mean wall time (h) vs mean top-1 over seeds.

    Wall time is the run's own training + evaluation time as recorded, so it includes the teacher's
    forward passes and any extra modules: the cost that the paper's Fig. 3 compares.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = frame[(frame["teacher"] == teacher) & (frame["student"] == student)].copy()
    runs["variant"] = runs["label"] + (runs["ds"] | runs["lr"]).map({True: " (LDA)", False: ""})
    labelled = runs["label"].str.contains(r"\+|LR|DS")  # labels that already say what they are
    runs.loc[labelled, "variant"] = runs.loc[labelled, "label"]
    points = runs.groupby("variant").agg(hours=("wall_time_s", "mean"), top1=(f"{metric}_top1", "mean"),
                                         order=("method_order", "min")).sort_values("order")
    points["hours"] = points["hours"] / 3600.0
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.scatter(points["hours"], points["top1"])
    for name, row in points.iterrows():
        ax.annotate(name, (row["hours"], row["top1"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xlabel("training time per run (hours, mean over seeds)")
    ax.set_ylabel(f"{metric} top-1 (%)")
    ax.set_title(f"{teacher} → {student}: accuracy vs training time", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
