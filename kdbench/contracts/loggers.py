"""The logger contract: how a run's numbers reach an experiment tracker (TensorBoard, W&B, MLflow, ...).

A logger watches; it never decides. The harness hands it plain, typed data, copied from what the run
store records, and ignores whatever it does with it: a logger cannot change a number, a key or a
record, and a logger that raises is dropped for that run with one warning while the run goes on.

A logger is built once per run, in the process that trains it (a pool worker, a SLURM job, a Ray
task), from its name and parameters: ``factory(runs_root=..., **params)``. ``runs_root`` is the run
store, where a logger keeps local files. The factory should only check that its library is there
(:func:`require_extra`) and open nothing: the CLI also builds one to check a suite before it runs.
Then, for each run:

    start(RunInfo)     the resolved spec and what identifies the run (suite, label, pair, seed, ...)
    epoch(EpochLog)    every epoch's numbers, under the record's own names (``loss_kd``, ``test_top1``)
    finish(FinalLog)   the record the run store keeps; only when the run finished
    close()            always, last: flush and release (a run that failed or stopped skips ``finish``)
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from kdbench.errors import KdbenchError

Scalar = bool | int | float | str


@dataclass(frozen=True)
class RunInfo:
    """What a tracker needs to name, group and describe one run (a student run or a teacher's training)."""

    kind: Literal["run", "teacher"]
    suite: str
    label: str  # the method entry's label ("kd+LR"), or "teacher"
    pair: str  # "resnet20 → resnet8"; a teacher: its arch
    seed: int
    key: str  # the run's (or teacher's) content key in the run store
    method: str  # the method's name ("ce" for a teacher)
    student: str  # the trained network's arch
    teacher: str | None
    dataset: str
    revision: bool  # Label Revision on
    selection: bool  # Data Selection on
    spec: Mapping[str, Any]  # the resolved spec, as the record stores it (JSON-able)
    teacher_cache: bool | None = None  # teacher logits from the exact cache (None: no teacher logits)

    @property
    def group(self) -> str:
        """A suite's students share one group; its teachers get their own, beside them."""
        if self.kind == "run":
            return self.suite
        return f"{self.suite}.teachers" if self.suite else "teachers"  # a teacher trained outside a suite

    @property
    def name(self) -> str:
        """Suite, label, pair and seed, in characters any file system and tracker accepts."""
        parts = [self.label, f"{self.teacher}-{self.student}" if self.teacher else self.student, f"seed{self.seed}"]
        if self.kind == "teacher":
            parts = [self.label, self.student, f"seed{self.seed}"]  # "teacher", or "teacher @0.2 ... noise"
        return "__".join(safe_name(p) for p in parts)

    def tags(self) -> list[str]:
        """Method, pair, LR and DS, plus the kind: what a tracker filters on."""
        pair = f"{self.teacher}-{self.student}" if self.teacher else self.student
        tags = [f"method:{self.method}", f"pair:{pair}", self.kind]
        return tags + (["LR"] if self.revision else []) + (["DS"] if self.selection else [])

    def flat_params(self) -> dict[str, Scalar]:
        """The spec as ``dotted.key → scalar`` (lists as JSON, None as "none"): hyperparameters for trackers
        that take flat key/value pairs."""
        out: dict[str, Scalar] = {}
        _flatten(self.spec, "", out)
        return out


@dataclass(frozen=True)
class EpochLog:
    """One epoch's numbers, under the record's names (``epoch``, ``lr``, ``train_loss``, ``train_top1``,
    ``test_top1``, ``val_top1``, ``train_images_per_s``, ``loss_<term>``, ...), exactly as stored."""

    epoch: int
    values: Mapping[str, float]
    teacher_cache: bool | None = None  # this run's teacher logits came from the exact cache

    def scalars(self) -> dict[str, float]:
        """The values plus ``teacher_cache_used`` (1/0) when the run has teacher logits."""
        extra = {} if self.teacher_cache is None else {"teacher_cache_used": float(self.teacher_cache)}
        return {**{k: float(v) for k, v in self.values.items() if k != "epoch"}, **extra}


@dataclass(frozen=True)
class FinalLog:
    """The stored record of a finished run (JSON-able) and its headline numbers."""

    record: Mapping[str, Any]
    summary: Mapping[str, float] = field(default_factory=dict)  # best_top1, last_top1, wall_time_s, ...

    def record_json(self) -> str:
        return json.dumps(self.record, indent=1, sort_keys=True)


class RunLogger:
    """Base class of loggers: every call does nothing, so a logger overrides only what it uses."""

    def start(self, run: RunInfo) -> None:
        """A run begins (or resumes); nothing has been logged for it in this process yet."""

    def epoch(self, metrics: EpochLog) -> None:
        """One epoch ended."""

    def finish(self, final: FinalLog) -> None:
        """The run finished; ``final.record`` is the record the run store keeps."""

    def close(self) -> None:
        """Last call for this run, whatever happened to it."""


def require_extra(logger: str, module: str, extra: str) -> ModuleType:
    """Import a logger's library, or fail with one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise KdbenchError(f"logger {logger!r} needs {module}: pip install 'kdbench[{extra}]'") from None


def safe_name(text: str) -> str:
    """``text`` with every character other than letters, digits, ``.``, ``_``, ``+``, ``=``, ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", text) or "_"


def _flatten(value: Any, prefix: str, out: dict[str, Scalar]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, bool | int | float | str):
        out[prefix] = value
    elif value is None:
        out[prefix] = "none"
    else:  # a list, or an empty mapping
        out[prefix] = json.dumps(value, sort_keys=True, default=str)
