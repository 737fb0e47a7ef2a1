"""Execution settings of a command: where things go and run. None of them is part of any key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdbench.plan.spec import canonical_json
from kdbench.store import kdbench_home


@dataclass(frozen=True)
class LoggerRef:
    """A logger chosen for a command (``--log``, a suite's ``loggers:``): its name and checked parameters.
    Plain data, so it travels to every worker, which builds its own logger from it for each run."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # params is a mapping; executors key their per-process workers by factory
        return hash((self.name, canonical_json(dict(self.params))))


@dataclass(frozen=True)
class RunOptions:
    """Plain, picklable settings that travel with the specs to every worker."""

    runs_root: str = "runs"  # the run store (``--runs``, $KDBENCH_RUNS); published results live elsewhere
    data_root: str | None = None  # default: $KDBENCH_HOME/data
    download: bool = False
    device: str = "auto"
    home: str | None = None  # default: $KDBENCH_HOME
    force: bool = False
    quiet: bool = False
    # a tune trial's epoch lines show validation top-1 (its objective), not the test split's: a study picks
    # its values on validation alone, so the test accuracy is not what its trials should be watched by
    validation_progress: bool = False
    checkpoint_every: int = 10
    eval_batch_size: int = 1024  # also the batch of a teacher-output cache build
    mixed_precision: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    # the channels_last memory format for images and networks, on the CPU as on CUDA: other kernels for the same
    # function (oneDNN's NHWC convolutions, 15-25% faster on a CPU), so not part of a run's key; recorded in
    # each record's environment, and `kdbench verify` re-trains a record with the format it was trained in
    channels_last: bool = True
    extra_plugin_files: tuple[str, ...] = ()
    executor: str = "serial"  # recorded in every record's provenance
    threads: int | None = None  # torch intra-op threads of a worker (None: torch's default)
    loader_workers: int = 4  # decoding processes per split of a dataset streamed from disk
    nproc: int | None = None  # DDP processes per run (``--nproc``); None: each run's ``recipe.devices``
    loggers: tuple[LoggerRef, ...] = ()  # experiment trackers every run and teacher reports to (none by default)

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else kdbench_home()

    @property
    def data_path(self) -> Path:
        return Path(self.data_root) if self.data_root else self.home_path / "data"
