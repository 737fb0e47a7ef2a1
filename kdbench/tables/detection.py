"""The noise-detection table of ``kdbench score`` on a dataset with label noise (docs/methods.md §12): per
estimator, how well its score singles out the flipped labels (AUROC, precision@k, the share found in the most
suspicious 10%) and what scoring cost."""

from __future__ import annotations

import math

import pandas as pd

from kdbench.store import DetectionRecord
from kdbench.tables.cells import Table, markdown


def detection_table(rows: list[DetectionRecord], caption: str) -> Table:
    """Estimators by AUROC, best first: AUROC, precision@k, the share of the flipped labels found in the most
    suspicious 10%, which end of the score is suspicious, seconds."""
    ranked = sorted(rows, key=lambda r: -r.auroc if not math.isnan(r.auroc) else math.inf)
    header = ["estimator", "AUROC", "precision@k", "found@10%", "suspicious", "scoring s"]
    body = [[r.estimator, f"{r.auroc:.3f}", f"{r.precision_at_k:.3f}", _share(r.found_at_10), r.suspect_when,
             f"{r.seconds:.2f}"] for r in ranked]
    k = ranked[0].k if ranked else 0
    note = (f"{caption}. k = {k} flipped labels; AUROC 0.5 is chance; found@10%: the share of the flipped labels "
            "among the 10% most suspicious samples (random finds 10%). Each score is read as suspicious at its "
            "`suspicious` end (docs/methods.md §12).")
    tidy = pd.DataFrame([r.model_dump() for r in ranked])
    return Table(markdown=markdown(header, body) + "\n\n" + note + "\n", tidy=tidy)


def _share(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"
