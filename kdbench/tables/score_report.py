"""Per-sample scores as CSV and a histogram PNG (``kdbench score``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdbench.store import StoredScores, write_outputs
from kdbench.tables.plots import score_histogram_png


def scores_frame(stored: StoredScores) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(
        {
            "index": range(stored.values.shape[0]),
            "label": stored.labels.tolist(),
            "score": stored.values.tolist(),
            "teacher_correct": stored.teacher_correct.tolist(),
        }
    )
    return frame


def write_score_report(stored: StoredScores, out_dir: Path, stem: str, title: str, caption: str = "") -> list[Path]:
    frame = scores_frame(stored)
    return write_outputs(out_dir, {f"{stem}.csv": frame.to_csv(index=False).encode(),
                                   f"{stem}.png": score_histogram_png(frame, title, caption)})
