"""Per-sample data-value scores, cached by content under ``$KDBENCH_HOME/scores/<key>.pt``.

The key hashes (teacher, dataset, estimator and its resolved parameters), so every run, seed and suite
that selects with the same estimator on the same teacher scores the training set once (Table II's nine
cells share one scoring).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kdbench.plan.spec import ComponentRef, TeacherSpec, content_key
from kdbench.store.files import atomic_torch_save
from kdbench.store.locks import file_lock


@dataclass(frozen=True)
class StoredScores:
    """One estimator's scores of a training set, with what is needed to split and report it."""

    values: Tensor  # N, float64
    info: dict[str, Any]  # the settings the estimator actually used
    higher_to_teacher: bool
    labels: Tensor
    teacher_correct: Tensor  # bool N: the teacher's argmax equals the label
    seconds: float  # scoring time, teacher forward passes excluded
    key: str


def scores_key(teacher: TeacherSpec, estimator: ComponentRef) -> str:
    return content_key({"teacher": teacher.key, "dataset": teacher.dataset.identity(),
                        "estimator": estimator.identity()})


class ScoreCache:
    """Scores by content key under ``<home>/scores``."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "scores"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def lock(self, key: str):
        """Held while a process computes these scores."""
        return file_lock(self.path(key))

    def load(self, key: str) -> StoredScores | None:
        path = self.path(key)
        if not path.is_file():
            return None
        return StoredScores(**torch.load(path, weights_only=False), key=key)

    def save(self, scores: StoredScores) -> None:
        fields = {k: v for k, v in asdict(scores).items() if k != "key"}
        atomic_torch_save(fields, self.path(scores.key))
