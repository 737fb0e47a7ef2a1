"""Weights & Biases: one W&B run per kdbench run, grouped by suite, with the resolved spec as its config.

Runs are tagged with their method, pair and LR/DS settings, so a 270-run grid filters and groups in the
W&B workspace; a suite's teachers get their own group (``<suite>.teachers``) in the same project.
``mode: offline`` writes the runs under ``<runs>/wandb`` with no network (``wandb sync`` uploads them later).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kdbench.contracts import EpochLog, FinalLog, RunInfo, RunLogger, hookimpl, require_extra


class WandbLogger(RunLogger):
    """One W&B run per kdbench run (project ``kdbench`` unless set), group = suite, config = resolved spec."""

    def __init__(self, runs_root: str = "runs", project: str = "kdbench", entity: str | None = None,
                 mode: Literal["online", "offline", "disabled"] | None = None, dir: str | None = None) -> None:
        self.wandb = require_extra("wandb", "wandb", "wandb")
        self.project, self.entity, self.mode = project, entity, mode  # mode None: WANDB_MODE, else W&B's default
        self.dir = Path(dir) if dir else Path(runs_root)  # W&B adds its own wandb/ folder
        self._run: Any = None
        self._finished = False

    def start(self, run: RunInfo) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = {"kdbench": {"kind": run.kind, "suite": run.suite, "label": run.label, "pair": run.pair,
                              "seed": run.seed, "key": run.key, "LR": run.revision, "DS": run.selection,
                              "teacher_cache": run.teacher_cache}, **run.spec}
        self._run = self.wandb.init(
            project=self.project, entity=self.entity, mode=self.mode, dir=str(self.dir), group=run.group,
            job_type=run.kind, name=f"{run.suite}/{run.name}", tags=run.tags(), config=config,
            reinit="create_new", settings=self.wandb.Settings(console="off", silent=True),
        )

    def epoch(self, metrics: EpochLog) -> None:
        self._run.log(metrics.scalars(), step=metrics.epoch)

    def finish(self, final: FinalLog) -> None:
        self._run.summary.update(dict(final.summary))
        self._finished = True

    def close(self) -> None:
        if self._run is not None:
            self._run.finish(exit_code=0 if self._finished else 1)  # a failed or stopped run shows as such
            self._run = None


@hookimpl
def kdbench_register_loggers(register: Callable[..., None]) -> None:
    register("wandb", WandbLogger)
