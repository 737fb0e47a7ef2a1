"""Tiny suites run through the real path (suite file → plan → executor → worker → record) in a throwaway
home, so each check exercises what ``kdbench run`` does, in seconds.

Everything lives under one temporary folder: its own ``$KDBENCH_HOME`` (one teacher, trained once and
shared by every check), data root and one run store per check, so nothing of the user's is read or
written and two checks never find each other's records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdbench.errors import KdbenchError
from kdbench.plan import expand, load_suite
from kdbench.registry import load_registry
from kdbench.run.execute import execute_plan
from kdbench.run.options import RunOptions
from kdbench.store import RunRecord

PLAIN_NET = Path(__file__).with_name("plain_net.py")  # the doctor's BatchNorm-free model, as a plugin file
TIMING_FIELDS = frozenset({"epoch_time_s", "train_images_per_s"})

# Synthetic 8 px images, 10 classes: two epochs of resnet8 take about a second on one CPU core. The last batch
# of 150 − 15 (validation) = 135 training images in batches of 32 is uneven (7), as in real data.
TINY_DATASET: dict[str, Any] = {"name": "synthetic", "params": {"num_train": 150, "num_test": 64, "image_size": 8,
                                                               "num_classes": 10, "val_fraction": 0.1}}
TINY_RECIPE: dict[str, Any] = {"epochs": 2, "batch_size": 32, "lr": 0.05, "milestones": [1]}
TINY_PAIR: dict[str, str] = {"teacher": "resnet20", "student": "resnet8"}
KD = {"name": "kd", "params": {"T": 4.0}}


class CheckFailed(Exception):
    """A check's run did not finish, or finished with numbers it should not have: the row's one line."""


@dataclass(frozen=True)
class TinySuite:
    """What a check varies of the tiny suite; everything else is the shared default above."""

    name: str
    methods: Sequence[Any] = (KD,)
    seeds: Sequence[int] = (0,)
    pair: Mapping[str, str] = field(default_factory=lambda: dict(TINY_PAIR))
    dataset: Mapping[str, Any] = field(default_factory=lambda: dict(TINY_DATASET))
    recipe: Mapping[str, Any] = field(default_factory=dict)  # over TINY_RECIPE
    plugins: Sequence[str] = ()


@dataclass(frozen=True)
class Execution:
    """How a check runs its suite: the executor and its parameters, DDP processes, device, threads."""

    executor: str = "serial"
    params: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int | None = 1
    nproc: int | None = None
    mixed_precision: bool = True
    loader_workers: int = 1  # decoding processes of a streamed split: the tiny folder needs no more


class Sandbox:
    """A temporary home, data root and run stores for the doctor's checks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.data = root / "data"

    def write(self, suite: TinySuite) -> Path:
        """The suite as a YAML file, as a user would write it."""
        content = {
            "name": suite.name,
            "plugins": [str(p) for p in suite.plugins],
            "dataset": dict(suite.dataset),
            "recipe": {**TINY_RECIPE, **suite.recipe},
            "teacher_recipe": {"epochs": 2, "milestones": [1]},
            "seeds": list(suite.seeds),
            "pairs": [dict(suite.pair)],
            "methods": list(suite.methods),
        }
        path = self.root / "suites" / f"{suite.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    def options(self, store: str, how: Execution) -> RunOptions:
        return RunOptions(runs_root=str(self.root / "runs" / store), home=str(self.home), data_root=str(self.data),
                          device=how.device, quiet=True, threads=how.threads, nproc=how.nproc, executor=how.executor,
                          mixed_precision=how.mixed_precision, checkpoint_every=0,
                          loader_workers=how.loader_workers)

    def run(self, suite: TinySuite, store: str, how: Execution = Execution()) -> list[RunRecord]:
        """Train the suite into the run store ``store``; its records by (label, seed). Any failed job raises."""
        loaded = load_suite(self.write(suite))
        registry = load_registry(loaded.plugin_files)
        plan = expand(loaded, registry)
        options = self.options(store, how)
        try:
            engine = registry.get("executor", how.executor).create(dict(how.params), f"doctor {how.executor}",
                                                                   runs_root=options.runs_root)
        except KdbenchError as exc:
            raise CheckFailed(str(exc)) from exc
        records = []
        for outcome in execute_plan(plan, options, engine):
            if outcome.status == "failed":
                raise CheckFailed(f"{outcome.kind} {outcome.label} failed: {first_line(outcome.error)}")
            if outcome.kind == "run" and outcome.record is not None:
                records.append(outcome.record)
        if len(records) != len(plan.runs):
            raise CheckFailed(f"{len(records)} of {len(plan.runs)} runs came back")
        return sorted(records, key=lambda r: (r.label, r.seed))


def first_line(text: str | None) -> str:
    lines = (text or "no message").strip().splitlines()
    return lines[-1] if lines else "no message"


def epoch_numbers(record: RunRecord) -> list[dict[str, float]]:
    """Every per-epoch number of a record but its timings (which no two runs share)."""
    return [{k: float(v) for k, v in m.model_dump().items() if k not in TIMING_FIELDS and isinstance(v, int | float)}
            for m in record.metrics]


def largest_difference(a: RunRecord, b: RunRecord) -> float:
    """The largest absolute difference between two records' per-epoch numbers (inf when their shapes differ)."""
    ea, eb = epoch_numbers(a), epoch_numbers(b)
    if len(ea) != len(eb) or any(x.keys() != y.keys() for x, y in zip(ea, eb, strict=True)):
        return math.inf
    return max((abs(x[k] - y[k]) for x, y in zip(ea, eb, strict=True) for k in x), default=0.0)
