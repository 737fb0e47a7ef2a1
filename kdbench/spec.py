"""Run and teacher specifications: frozen plain data with a content-hash key.

A spec is the only thing that crosses into a worker (process, SLURM job, Ray task); the worker
rebuilds the registry from ``plugin_files`` and looks components up by name. The key hashes only
what changes the numbers (components, their resolved parameters and code versions, data, recipe,
seed), so a finished run is found again by any suite that asks for the same thing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

SPEC_FORMAT = 1  # bump when the meaning of a key changes


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_key(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class ComponentRef:
    """A component by name with its fully resolved parameters and code version."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    version: str = "1"

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "version": self.version}


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher: trained by the harness from (arch, data, recipe, seed), or loaded from a checkpoint."""

    arch: str
    arch_version: str
    dataset: ComponentRef
    recipe: dict[str, Any]
    seed: int
    checkpoint: str | None = None  # path of an external checkpoint; then ``fingerprint`` is its sha256
    fingerprint: str | None = None

    @property
    def key(self) -> str:
        if self.checkpoint is not None:
            return content_key({"arch": self.arch, "checkpoint_sha256": self.fingerprint})
        return content_key(
            {
                "format": SPEC_FORMAT,
                "arch": [self.arch, self.arch_version],
                "dataset": self.dataset.identity(),
                "recipe": self.recipe,
                "seed": self.seed,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherSpec:
        return cls(**{**d, "dataset": ComponentRef(**d["dataset"])})


@dataclass(frozen=True)
class RunSpec:
    """One student training run of a suite's cross product."""

    suite: str
    label: str
    method: ComponentRef
    student: str
    student_version: str
    dataset: ComponentRef
    recipe: dict[str, Any]
    seed: int
    teacher: TeacherSpec | None = None
    selection: dict[str, Any] | None = None
    revision: dict[str, Any] | None = None
    plugin_files: tuple[str, ...] = ()
    order: tuple[int, int] = (0, 0)  # (pair, method entry) position in the suite: table order, not key

    @property
    def key(self) -> str:
        return content_key(
            {
                "format": SPEC_FORMAT,
                "method": self.method.identity(),
                "student": [self.student, self.student_version],
                "teacher": self.teacher.key if self.teacher else None,
                "dataset": self.dataset.identity(),
                "recipe": self.recipe,
                "seed": self.seed,
                "selection": self.selection,
                "revision": self.revision,
            }
        )

    @property
    def pair(self) -> str:
        return f"{self.teacher.arch if self.teacher else '-'} → {self.student}"

    def __hash__(self) -> int:
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plugin_files"] = list(self.plugin_files)
        d["order"] = list(self.order)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(
            **{
                **d,
                "method": ComponentRef(**d["method"]),
                "dataset": ComponentRef(**d["dataset"]),
                "teacher": TeacherSpec.from_dict(d["teacher"]) if d.get("teacher") else None,
                "plugin_files": tuple(d.get("plugin_files", ())),
                "order": tuple(d.get("order", (0, 0))),
            }
        )
