"""Where kdbench keeps things by default: what every suite shares ($KDBENCH_HOME: teachers, score caches,
datasets) and the user's own runs ($KDBENCH_RUNS, else ``runs/`` in the working directory)."""

from __future__ import annotations

import os
from pathlib import Path


def kdbench_home() -> Path:
    return Path(os.environ.get("KDBENCH_HOME") or Path.home() / ".cache" / "kdbench").expanduser()


def default_runs_root() -> Path:
    """The run store of ``kdbench run``: apart from ``results/``, which holds only what is published."""
    return Path(os.environ.get("KDBENCH_RUNS") or "runs").expanduser()
