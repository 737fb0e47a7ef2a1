"""Run and teacher specifications: frozen, typed, plain data with a content-hash key.

A spec is the only thing that crosses into a worker (process, SLURM job, Ray task); the worker
rebuilds the registry from ``plugin_files`` and looks components up by name. The key hashes only
what changes the numbers (components, their resolved parameters and code versions, data, recipe,
seed, Data Selection and Label Revision), so a finished run is found again by any suite that asks for
the same thing. ``to_dict``/``from_dict`` give the JSON form stored in every record; the key is
computed from exactly that form, so a spec read back from a record has the same key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from kdbench.contracts.names import DEFAULT_LAMBDA1, DEFAULT_LAMBDA2
from kdbench.contracts.recipe import TrainingRecipe

SPEC_FORMAT = 1  # bump when the meaning of a key changes

SelectionOrder = Literal["highest", "lowest", "random"]
SelectionMode = Literal["teacher", "drop"]
NoiseKind = Literal["symmetric", "pairflip", "superclass"]
Reduction = Literal["mean", "sum"]


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

    @classmethod
    def from_identity(cls, d: dict[str, Any]) -> ComponentRef:
        return cls(name=d["name"], params=dict(d.get("params") or {}), version=str(d.get("version", "1")))


@dataclass(frozen=True)
class LabelNoise:
    """Wrong training (and validation) labels, on purpose (docs/methods.md §12): ``rate`` of them flipped by
    ``kind`` with ``seed``. Part of the dataset's identity, so teachers, scores and runs are keyed by it."""

    rate: float
    kind: NoiseKind = "symmetric"
    seed: int = 0

    def identity(self) -> dict[str, Any]:
        return {"rate": self.rate, "kind": self.kind, "seed": self.seed}


@dataclass(frozen=True)
class DatasetRef(ComponentRef):
    """A dataset by name and parameters, with the label noise put into it (None or rate 0: clean labels,
    and then the same identity, and keys, as before label noise existed)."""

    label_noise: LabelNoise | None = None

    @property
    def noisy(self) -> bool:
        return self.label_noise is not None and self.label_noise.rate > 0

    def identity(self) -> dict[str, Any]:
        base = super().identity()
        if self.label_noise is None or not self.noisy:
            return base
        return {**base, "label_noise": self.label_noise.identity()}

    @classmethod
    def from_identity(cls, d: dict[str, Any]) -> DatasetRef:
        noise = d.get("label_noise")
        return cls(name=d["name"], params=dict(d.get("params") or {}), version=str(d.get("version", "1")),
                   label_noise=LabelNoise(**noise) if noise else None)


#: The generator stream a random selection that a plan makes draws from (``SelectionSpec.stream``).
RANDOM_SELECTION_STREAM = 2


@dataclass(frozen=True)
class SelectionSpec:
    """Data Selection (docs/methods.md §6): ``fraction`` of the training set goes to the teacher (D_t); with
    ``mode`` "drop" that fraction is removed from training instead (removal curves, docs/methods.md §12a).

    With ``order`` "highest"/"lowest" the samples are ranked by ``estimator``'s scores; with "random"
    there is no estimator and ``seed`` draws the subset, from the generator ``stream`` says: 2 (what plans
    make) seeds it with a hash of ``seed``, a stream of its own; 1 seeded it with ``seed`` itself, whose first
    permutation is the one label noise with the same seed flips first, so on noisy data such a "random"
    subset was the flipped samples (``kdbench.train.selection.random_subset``). Records written with stream 1
    keep their keys and re-train as they did.
    """

    fraction: float
    order: SelectionOrder
    estimator: ComponentRef | None = None
    seed: int | None = None
    mode: SelectionMode = "teacher"
    stream: int = 1

    def identity(self) -> dict[str, Any]:
        # "mode" only when it is "drop": every key written before the mode existed stays what it was
        mode = {"mode": self.mode} if self.mode != "teacher" else {}
        if self.order == "random":
            stream = {"stream": self.stream} if self.stream != 1 else {}  # stream 1's keys stay what they were
            return {"estimator": None, "fraction": self.fraction, "order": "random", "seed": self.seed, **mode,
                    **stream}
        assert self.estimator is not None
        return {"estimator": self.estimator.identity(), "fraction": self.fraction, "order": self.order, **mode}

    @classmethod
    def from_identity(cls, d: dict[str, Any]) -> SelectionSpec:
        estimator = ComponentRef.from_identity(d["estimator"]) if d.get("estimator") else None
        return cls(fraction=d["fraction"], order=d["order"], estimator=estimator, seed=d.get("seed"),
                   mode=d.get("mode", "teacher"), stream=int(d.get("stream", 1)))


@dataclass(frozen=True)
class RevisionSpec:
    """Label Revision (docs/methods.md §5): a revision strategy plus Eq. (11)'s options."""

    strategy: ComponentRef
    lambda1: float = DEFAULT_LAMBDA1
    lambda2: float = DEFAULT_LAMBDA2
    reduction: Reduction = "mean"
    temperature: float = 1.0
    # The method owns its logit loss: the strategy revises the teacher distribution it reads, on the samples
    # the teacher gets wrong, and Eq. (11) plays no part (docs/methods.md §7).
    in_method: bool = False

    def identity(self) -> dict[str, Any]:
        base = {**self.strategy.identity(), "lambda1": self.lambda1, "lambda2": self.lambda2,
                "reduction": self.reduction, "temperature": self.temperature}
        # Keyed only when set: Eq. (11) runs keep their keys; in-method runs revised every sample before.
        return {**base, "in_method": "wrong_only"} if self.in_method else base

    @classmethod
    def from_identity(cls, d: dict[str, Any]) -> RevisionSpec:
        return cls(strategy=ComponentRef.from_identity(d), lambda1=d["lambda1"], lambda2=d["lambda2"],
                   reduction=d["reduction"], temperature=d["temperature"], in_method="in_method" in d)


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher: trained by the harness from (arch, data, recipe, seed), or loaded from a checkpoint."""

    arch: str
    arch_version: str
    dataset: DatasetRef
    recipe: TrainingRecipe | None  # None for a checkpoint: its training is not ours to describe
    seed: int
    checkpoint: str | None = None  # path of an external checkpoint; then ``fingerprint`` is its sha256
    fingerprint: str | None = None

    @property
    def key(self) -> str:
        if self.checkpoint is not None:
            return content_key({"arch": self.arch, "checkpoint_sha256": self.fingerprint})
        assert self.recipe is not None
        return content_key(
            {
                "format": SPEC_FORMAT,
                "arch": [self.arch, self.arch_version],
                "dataset": self.dataset.identity(),
                "recipe": self.recipe.identity(),
                "seed": self.seed,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "arch_version": self.arch_version,
            "dataset": self.dataset.identity(),
            "recipe": self.recipe.identity() if self.recipe else {},
            "seed": self.seed,
            "checkpoint": self.checkpoint,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherSpec:
        return cls(
            arch=d["arch"],
            arch_version=d["arch_version"],
            dataset=DatasetRef.from_identity(d["dataset"]),
            recipe=TrainingRecipe.from_identity(d["recipe"]) if d.get("recipe") else None,
            seed=d["seed"],
            checkpoint=d.get("checkpoint"),
            fingerprint=d.get("fingerprint"),
        )


@dataclass(frozen=True)
class RunSpec:
    """One student training run of a suite's cross product."""

    suite: str
    label: str
    method: ComponentRef
    student: str
    student_version: str
    dataset: DatasetRef
    recipe: TrainingRecipe
    seed: int
    teacher: TeacherSpec | None = None
    selection: SelectionSpec | None = None
    revision: RevisionSpec | None = None
    plugin_files: tuple[str, ...] = ()
    order: tuple[int, int] = (0, 0)  # (pair, method entry) position in the suite: table order, not key
    # How many epochs, summed over the plan's runs, would run this run's teacher live over this training set:
    # the teacher-output cache's ``auto`` builds a table when that exceeds the views it costs. A hint for
    # execution, neither keyed nor stored (0: unknown, the run's own epochs count).
    teacher_passes: int = field(default=0, compare=False)

    @property
    def key(self) -> str:
        return content_key(
            {
                "format": SPEC_FORMAT,
                "method": self.method.identity(),
                "student": [self.student, self.student_version],
                "teacher": self.teacher.key if self.teacher else None,
                "dataset": self.dataset.identity(),
                "recipe": self.recipe.identity(),
                "seed": self.seed,
                "selection": self.selection.identity() if self.selection else None,
                "revision": self.revision.identity() if self.revision else None,
            }
        )

    @property
    def pair(self) -> str:
        return f"{self.teacher.arch if self.teacher else '-'} → {self.student}"

    def __hash__(self) -> int:
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "label": self.label,
            "method": self.method.identity(),
            "student": self.student,
            "student_version": self.student_version,
            "dataset": self.dataset.identity(),
            "recipe": self.recipe.identity(),
            "seed": self.seed,
            "teacher": self.teacher.to_dict() if self.teacher else None,
            "selection": self.selection.identity() if self.selection else None,
            "revision": self.revision.identity() if self.revision else None,
            "plugin_files": list(self.plugin_files),
            "order": list(self.order),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(
            suite=d["suite"],
            label=d["label"],
            method=ComponentRef.from_identity(d["method"]),
            student=d["student"],
            student_version=d["student_version"],
            dataset=DatasetRef.from_identity(d["dataset"]),
            recipe=TrainingRecipe.from_identity(d["recipe"]),
            seed=d["seed"],
            teacher=TeacherSpec.from_dict(d["teacher"]) if d.get("teacher") else None,
            selection=SelectionSpec.from_identity(d["selection"]) if d.get("selection") else None,
            revision=RevisionSpec.from_identity(d["revision"]) if d.get("revision") else None,
            plugin_files=tuple(d.get("plugin_files", ())),
            order=tuple(d.get("order", (0, 0))),
        )
