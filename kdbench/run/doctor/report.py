"""What the doctor found: one row per check, and the whole report as JSON.

A check that cannot apply on this machine (CUDA paths without a GPU, an extra that is not installed)
says so with status ``n/a``: it is neither a pass nor a failure, so a CPU box is not told that its GPU
paths work.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["pass", "fail", "n/a"]


@dataclass(frozen=True)
class CheckResult:
    """One row of the report: what was checked, how it went, what was found, and a figure where one was
    measured (a speed, a difference, a time)."""

    check: str
    status: Status
    result: str
    figure: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class DoctorReport:
    """Every check in the order it ran, and how long the whole examination took."""

    checks: tuple[CheckResult, ...]
    seconds: float
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in ("pass", "fail", "n/a")}

    def to_json(self) -> str:
        data = {"ok": not self.failed, "counts": self.counts(), "seconds": round(self.seconds, 1),
                "machine": self.machine, "checks": [asdict(c) for c in self.checks]}
        return json.dumps(data, indent=2) + "\n"
