"""Where kdbench keeps what every suite shares: teachers, score caches, datasets ($KDBENCH_HOME)."""

from __future__ import annotations

import os
from pathlib import Path


def kdbench_home() -> Path:
    return Path(os.environ.get("KDBENCH_HOME") or Path.home() / ".cache" / "kdbench").expanduser()
