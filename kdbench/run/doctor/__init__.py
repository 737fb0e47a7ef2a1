"""``kdbench doctor``: whether kdbench works on this machine, and how fast (docs/design.md: kdbench/run/).

:func:`examine` runs every check of :mod:`kdbench.run.doctor.checks` in a throwaway home and yields
their rows as they finish, so the command can show progress over its minute or two.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from kdbench.errors import KdbenchError
from kdbench.run.doctor.checks import CHECKS, NAMES, DoctorSettings, Examination
from kdbench.run.doctor.report import CheckResult, DoctorReport
from kdbench.run.doctor.sandbox import CheckFailed, Sandbox, first_line

__all__ = ["CheckResult", "DoctorReport", "DoctorSettings", "examine"]


def examine(settings: DoctorSettings) -> Iterator[CheckResult]:
    """Every check's rows, in order. A check that raises is one failure row (a user error's message, or the
    exception's last line), and the next check runs as if nothing happened."""
    threads = torch.get_num_threads()  # a serial tiny run sets this process's threads; every check starts anew
    with tempfile.TemporaryDirectory(prefix="kdbench-doctor-") as tmp:
        exam = Examination(Sandbox(Path(tmp)), settings)
        for check in CHECKS:
            torch.set_num_threads(threads)
            started = time.perf_counter()
            try:
                rows = check(exam)
            except (CheckFailed, KdbenchError) as exc:
                rows = [CheckResult(NAMES[check], "fail", first_line(str(exc)))]
            except Exception as exc:  # a broken path is the report's news, not a crash
                rows = [CheckResult(NAMES[check], "fail", f"{type(exc).__name__}: {first_line(str(exc))}")]
            seconds = time.perf_counter() - started
            for row in rows:
                yield row if row.seconds else CheckResult(row.check, row.status, row.result, row.figure,
                                                          round(seconds / len(rows), 2))
        torch.set_num_threads(threads)

