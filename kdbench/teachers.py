"""Teachers: trained once and stored by content, or loaded from a published checkpoint.

A harness-trained teacher lives under ``$KDBENCH_HOME/teachers/<key>/`` (``model.pt`` +
``record.json``), where the key hashes (arch, dataset, recipe, seed), so every run and every suite
that needs the same teacher reuses it. An external checkpoint (RepDistiller/mdistiller format,
``{'model': state_dict}``) is verified by a strict load and its test accuracy is measured.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdbench.errors import KdbenchError
from kdbench.spec import TeacherSpec
from kdbench.store import atomic_torch_save, atomic_write_json, read_record

MODEL_FILE = "model.pt"
RECORD_FILE = "record.json"


def kdbench_home() -> Path:
    return Path(os.environ.get("KDBENCH_HOME") or Path.home() / ".cache" / "kdbench").expanduser()


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
    return obj


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


class TeacherStore:
    """Content-addressed teachers under ``<home>/teachers``."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.root = Path(home or kdbench_home()) / "teachers"

    def directory(self, spec: TeacherSpec) -> Path:
        return self.root / spec.key

    def record(self, spec: TeacherSpec) -> dict[str, Any] | None:
        d = self.directory(spec)
        record = read_record(d / RECORD_FILE)
        return record if record is not None and (d / MODEL_FILE).is_file() else None

    def save(self, spec: TeacherSpec, model: nn.Module, record: dict[str, Any]) -> Path:
        d = self.directory(spec)
        atomic_torch_save({"model": model.state_dict(), "arch": spec.arch}, d / MODEL_FILE)
        atomic_write_json(d / RECORD_FILE, {**record, "status": "finished", "key": spec.key,
                                            "spec": spec.to_dict(), "saved_at": time.time()})
        return d

    def model_path(self, spec: TeacherSpec) -> Path:
        return self.directory(spec) / MODEL_FILE

    def list(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        records = (read_record(p / RECORD_FILE) for p in sorted(self.root.iterdir()) if p.is_dir())
        return [r for r in records if r is not None]
