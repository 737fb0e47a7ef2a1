"""``kdbench doctor``: whether kdbench works on this machine, and how fast."""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from kdbench.cli.common import Device, console, option
from kdbench.run import RunOptions
from kdbench.run.doctor import DoctorReport, DoctorSettings, examine
from kdbench.store import kdbench_home
from kdbench.store.files import atomic_write_bytes

MARKS = {"pass": "ok", "fail": "FAIL", "n/a": "n/a"}


def doctor(
    out: Annotated[str | None, option("--out", metavar="FILE",
                                      help="the report as JSON (default: $KDBENCH_HOME/doctor.json)")] = None,
    device: Device = RunOptions.device,
    speed: Annotated[bool, option("--speed/--no-speed", help="measure the images/s of CE and KD steps on the "
                                  "standard pair (default: on)")] = True,
) -> int:
    """check that kdbench works on this machine, and how fast

    Checks the versions and devices, each optional extra, a tiny KD run with the live teacher and from the
    teacher-output cache (equal numbers), the `pool` executor with two slots, a 2-process DDP run against one
    process (gloo on a CPU, NCCL on two GPUs), a streamed image folder, on CUDA bf16 autocast, channels_last, the
    cache in device memory and `torch.compile`, and the images/s of CE and KD steps on resnet32x4 → resnet8x4.
    Prints one table (check, result, figure), writes it as JSON, and exits 1 if a check fails; a check that cannot
    apply here says `n/a` and is not a pass. Nothing of yours is read or written: it works in a temporary folder.
    """
    started = time.perf_counter()
    rows = []
    for row in examine(DoctorSettings(device=device, speed=speed)):
        rows.append(row)
        print(f"kdbench doctor: {MARKS[row.status]:>4}  {row.check}", file=sys.stderr, flush=True)
    machine = {"host": platform.node(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    result = DoctorReport(tuple(rows), time.perf_counter() - started, machine)
    path = Path(out) if out else kdbench_home() / "doctor.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, result.to_json().encode())
    text = console()
    text.print(plain_table(result), markup=False, highlight=False)
    counts = result.counts()
    text.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['n/a']} not applicable, in "
               f"{result.seconds:.0f} s; wrote {path}", markup=False, highlight=False)
    return 1 if result.failed else 0


def plain_table(report: DoctorReport) -> str:
    """The rows as an aligned text table that never wraps a cell (a result is a sentence; a terminal folds the
    line, not the table)."""
    rows = [("check", "result", "figure")] + [(r.check, f"{MARKS[r.status]}: {r.result}", r.figure)
                                               for r in report.checks]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
