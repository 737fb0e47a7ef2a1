"""Execution settings of a command: where things go and run. None of them is part of any key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdbench.store import kdbench_home


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
    checkpoint_every: int = 10
    eval_batch_size: int = 1024  # also the batch of a teacher-output cache build
    mixed_precision: bool = True  # bf16 autocast on CUDA (no effect on CPU)
    extra_plugin_files: tuple[str, ...] = ()
    executor: str = "serial"  # recorded in every record's provenance
    threads: int | None = None  # torch intra-op threads of a worker (None: torch's default)
    loader_workers: int = 4  # decoding processes per split of a dataset streamed from disk
    nproc: int | None = None  # DDP processes per run (``--nproc``); None: each run's ``recipe.devices``

    @property
    def home_path(self) -> Path:
        return Path(self.home) if self.home else kdbench_home()

    @property
    def data_path(self) -> Path:
        return Path(self.data_root) if self.data_root else self.home_path / "data"
