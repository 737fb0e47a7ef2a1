"""Run records → one tidy row per run: the frame every table, plot and CSV is derived from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from kdbench.store import DetectionRecord, RunRecord, iter_records
from kdbench.tables.recipes import recipe_name

#: The columns of :func:`results_frame`, in order.
COLUMNS = [
    "suite", "key", "dataset", "label", "method", "method_params", "teacher", "student", "seed", "last_top1",
    "best_top1", "last_top5", "teacher_top1", "wall_time_s", "train_images_per_s", "pair_order", "method_order", "ds",
    "ds_estimator", "ds_fraction", "ds_order", "ds_mode", "lr", "lr_name", "lr_eta", "lr_lambda1", "lr_lambda2",
    "noise_rate", "noise_kind", "ds_params", "score_seconds", "detection_auroc",
    "detection_precision", "detection_found_at_10", "recipe", "logit_std",
]  # fmt: skip


def record_row(record: RunRecord) -> dict[str, object]:
    """One run as a flat row, with its Data Selection and Label Revision settings spelled out."""
    spec = record.spec
    selection, revision = spec.selection, spec.revision
    return {
        "suite": record.suite,
        "key": record.key,
        "dataset": record.dataset,
        "label": record.label,
        "method": record.method,
        "method_params": spec.method.params,
        "teacher": record.teacher,
        "student": record.student,
        "seed": record.seed,
        "last_top1": record.last_top1,
        "best_top1": record.best_top1,
        "last_top5": record.last_top5,
        "teacher_top1": record.teacher_top1,
        "wall_time_s": record.wall_time_s,
        "train_images_per_s": record.train_images_per_s,
        "pair_order": spec.order[0],
        "method_order": spec.order[1],
        "ds": selection is not None,
        "ds_estimator": selection.estimator.name if selection and selection.estimator else None,
        "ds_fraction": selection.fraction if selection else None,
        "ds_order": selection.order if selection else None,
        "ds_mode": selection.mode if selection else None,
        "lr": revision is not None,
        "lr_name": revision.strategy.name if revision else None,
        "lr_eta": revision.strategy.params.get("eta") if revision else None,
        "lr_lambda1": revision.lambda1 if revision else None,
        "lr_lambda2": revision.lambda2 if revision else None,
        "noise_rate": noise.rate if (noise := getattr(spec.dataset, "label_noise", None)) else 0.0,
        "noise_kind": noise.kind if noise else None,
        "ds_params": selection.estimator.params if selection and selection.estimator else None,
        "score_seconds": record.selection.score_seconds if record.selection else None,
        "detection_auroc": detection.auroc if (detection := _detection(record)) else None,
        "detection_precision": detection.precision_at_k if detection else None,
        "detection_found_at_10": detection.found_at_10 if detection else None,
        "recipe": recipe_name(record.dataset, spec.recipe.epochs, spec.recipe.batch_size, spec.recipe.lr,
                              tuple(spec.recipe.milestones), spec.recipe.weight_decay),
        "logit_std": bool(spec.method.params.get("logit_std", False)),
    }


def results_frame(source: str | Path | Iterable[RunRecord]) -> pd.DataFrame:
    """One row per finished run, from a directory of records (a suite's, or all of ``raw/``) or records."""
    records = iter_records(source) if isinstance(source, str | Path) else source
    frame: pd.DataFrame = pd.DataFrame([record_row(r) for r in records], columns=COLUMNS)
    return frame


def _detection(record: RunRecord) -> DetectionRecord | None:
    return record.selection.detection if record.selection else None
