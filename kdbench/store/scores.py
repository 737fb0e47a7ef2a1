"""Per-sample data-value scores, cached by content under ``$KDBENCH_HOME/scores/<key>.pt``.

A file holds tensors and plain data only (the scores, labels and teacher-correct mask as tensors; the
estimator's ``info`` as JSON-plain data; a bool; a float) and is read back with ``torch.load(weights_only=True)``:
a file that does not load that way is reported and computed again, never unpickled as objects.

The key hashes (teacher, dataset, estimator and its resolved parameters), so every run, seed and suite
that selects with the same estimator on the same teacher scores the training set once (Table II's nine
cells share one scoring).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import Tensor

from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import ComponentRef, TeacherSpec, content_key
from kdbench.store.files import UnreadableFile, atomic_torch_save, load_tensors, plain
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
        self._reported: set[Path] = set()  # files already warned about: one line each, however often read

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def lock(self, key: str) -> FileLock:
        """Held while a process computes these scores."""
        return file_lock(self.path(key))

    def load(self, key: str) -> StoredScores | None:
        """The cached scores; None when there are none, or when the file does not load as tensors and plain
        data with the fields of :class:`StoredScores` (a planted pickle, a foreign or truncated file): then
        it is reported in one line and treated as absent, so the scores are computed again and replace it."""
        path = self.path(key)
        if not path.is_file():
            return None
        reason: str | None
        try:
            fields = load_tensors(path)
        except UnreadableFile as exc:
            reason = str(exc)
        else:
            reason = _not_scores(fields)
            if reason is None:
                return StoredScores(**fields, key=key)
        if path not in self._reported:
            self._reported.add(path)
            warnings.warn(f"{path}: score cache not loaded ({reason}); the scores are computed again",
                          KdbenchWarning, stacklevel=2)
        return None

    def save(self, scores: StoredScores) -> None:
        """Tensors and plain data only: ``info`` as the JSON the run record keeps of it."""
        fields = {k: v for k, v in asdict(scores).items() if k != "key"}
        fields.update(info=json.loads(json.dumps(plain(scores.info), default=str)),
                      higher_to_teacher=bool(scores.higher_to_teacher), seconds=float(scores.seconds))
        atomic_torch_save(fields, self.path(scores.key))


_TENSORS = ("values", "labels", "teacher_correct")


def _not_scores(fields: Any) -> str | None:
    """Why a loaded file is not a score cache entry, or None when it is one."""
    expected = {f.name for f in dataclass_fields(StoredScores)} - {"key"}
    if not isinstance(fields, dict) or set(fields) != expected:
        return f"not a score cache entry: expected the fields {', '.join(sorted(expected))}"
    if not all(isinstance(fields[name], torch.Tensor) for name in _TENSORS) or not isinstance(fields["info"], dict):
        return "not a score cache entry: values, labels and teacher_correct must be tensors, info a dict"
    return None
