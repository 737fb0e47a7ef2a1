"""Write per-sample scores as CSV and a histogram PNG (``kdbench score``)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from kdbench.selection import StoredScores
from kdbench.store import atomic_write_bytes


def scores_frame(stored: StoredScores) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "index": range(stored.values.shape[0]),
            "label": stored.labels.tolist(),
            "score": stored.values.tolist(),
            "teacher_correct": stored.teacher_correct.tolist(),
        }
    )


def histogram_png(frame: pd.DataFrame, title: str) -> bytes:
    """Score distribution, split by whether the teacher is right: where the two overlap, DS cannot tell them apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for correct, name in ((True, "teacher right"), (False, "teacher wrong")):
        values = frame.loc[frame["teacher_correct"] == correct, "score"]
        if len(values):
            ax.hist(values, bins=50, alpha=0.6, label=f"{name} ({len(values)})")
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_score_report(stored: StoredScores, out_dir: Path, stem: str, title: str) -> list[Path]:
    frame = scores_frame(stored)
    csv, png = out_dir / f"{stem}.csv", out_dir / f"{stem}.png"
    atomic_write_bytes(csv, frame.to_csv(index=False).encode())
    atomic_write_bytes(png, histogram_png(frame, title))
    return [csv, png]
