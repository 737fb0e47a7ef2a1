"""Teachers: trained once and stored by content, or loaded from a published checkpoint.

A harness-trained teacher lives under ``$KDBENCH_HOME/teachers/<key>/`` (``model.pt`` +
``record.json``), where the key hashes (arch, dataset, recipe, seed), so every run and every suite
that needs the same teacher reuses it. An external checkpoint (RepDistiller/mdistiller format,
``{'model': state_dict}``) is verified by a strict load and its test accuracy is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from kdbench.errors import KdbenchError
from kdbench.plan.spec import TeacherSpec
from kdbench.store.files import atomic_torch_save, atomic_write_json
from kdbench.store.home import kdbench_home
from kdbench.store.locks import file_lock
from kdbench.store.records import TeacherRecord, read_finished

MODEL_FILE = "model.pt"
RECORD_FILE = "record.json"
CHECKPOINTS = "checkpoints"


def extract_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: ``{'model': sd}`` (RepDistiller), ``{'state_dict': sd}``, or sd."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise KdbenchError(f"{source}: not a checkpoint with a state dict (expected {{'model': state_dict}})")
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    state: dict[str, torch.Tensor] = obj
    return state


def load_checkpoint(model: nn.Module, path: str | Path, arch: str) -> None:
    """Strictly load a checkpoint into ``model``; a misfit is one line naming what does not fit."""
    path = Path(path)
    if not path.is_file():
        raise KdbenchError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise KdbenchError(f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__})") from None
    state = extract_state_dict(obj, str(path))
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[0]})")
        raise KdbenchError(f"{path} does not fit {arch}: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def read_teacher_record(path: Path) -> TeacherRecord | None:
    return read_finished(path, TeacherRecord, "teacher record")


class TeacherStore:
    """Content-addressed teachers under ``<home>/teachers/<key>/``: weights, record, TracIn checkpoints."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.root = Path(home or kdbench_home()) / "teachers"

    def directory(self, spec: TeacherSpec) -> Path:
        return self.root / spec.key

    def lock(self, spec: TeacherSpec) -> FileLock:
        """Held while a process trains this teacher."""
        return file_lock(self.root / spec.key)

    def model_path(self, spec: TeacherSpec) -> Path:
        return self.directory(spec) / MODEL_FILE

    def record(self, spec: TeacherSpec) -> TeacherRecord | None:
        """The stored teacher's record, when both it and the weights are there."""
        record = read_teacher_record(self.directory(spec) / RECORD_FILE)
        return record if record is not None and self.model_path(spec).is_file() else None

    def save(self, spec: TeacherSpec, model: nn.Module, record: TeacherRecord) -> TeacherRecord:
        """Weights first, then the record: a teacher with a record always has its weights."""
        atomic_torch_save({"model": model.state_dict(), "arch": spec.arch}, self.model_path(spec))
        atomic_write_json(self.directory(spec) / RECORD_FILE, record.model_dump(mode="json"))
        return record

    def save_checkpoint(self, spec: TeacherSpec, epoch: int, model: nn.Module) -> str:
        """Keep the teacher as it is at ``epoch``; returns the file name relative to its directory."""
        name = f"{CHECKPOINTS}/epoch_{epoch:04d}.pt"
        atomic_torch_save({"model": model.state_dict(), "epoch": epoch}, self.directory(spec) / name)
        return name

    def checkpoint_path(self, spec: TeacherSpec, name: str) -> Path:
        return self.directory(spec) / name

    def list(self) -> list[TeacherRecord]:
        if not self.root.is_dir():
            return []
        records = (read_teacher_record(p / RECORD_FILE) for p in sorted(self.root.iterdir()) if p.is_dir())
        return [r for r in records if r is not None]
