"""Where the quickstart's time goes: ``kdbench run suites/quickstart.yaml`` on an empty home, phase by phase.

    python benchmarks/quickstart_breakdown.py                      # fresh temporary home and run store
    python benchmarks/quickstart_breakdown.py --suite suites/x.yaml -- --threads 2
    python benchmarks/quickstart_breakdown.py --read HOME RUNS     # only read a finished job's records

The command runs as a user runs it (a new process, imports included, progress shown, the table beside the
published numbers) with a fresh temporary
``$KDBENCH_HOME`` and run store, so the teacher is trained, the training set scored and every run trained.
The phases are read back from what the job stored: the teacher record's ``wall_time_s``, the scores'
``selection.score_seconds`` (once per scores key), the teacher-output table's ``build_seconds``, and each
run's ``wall_time_s``, split into its training epochs (the sum of ``epoch_time_s``) and its per-epoch
evaluation (the rest). "other" is the total wall clock less all of those: start-up and imports, dataset and
teacher loading, the teacher's final test, writing records and the table. The record's ``teacher_cache``
decision is printed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def load(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(paths)]


def breakdown(home: Path, runs: Path, total: float | None) -> tuple[list[tuple[str, float]], list[str]]:
    """(phase, seconds) rows and notes, from the records under ``home`` and ``runs``."""
    rows: list[tuple[str, float]] = []
    teachers = load(list((home / "teachers").glob("*/record.json")))
    for t in teachers:
        rows.append((f"teacher {t['arch']} training ({len(t.get('metrics', []))} epochs)", t.get("wall_time_s") or 0.0))
    records = load(list(runs.glob("raw/*/*/record.json")))
    scored: dict[str, float] = {}
    for r in records:
        sel = r.get("selection") or {}
        if sel.get("score_seconds") is not None:
            scored[sel.get("scores_key") or "?"] = sel["score_seconds"]
    for key, seconds in scored.items():
        rows.append((f"scoring the training set ({key})", seconds))
    tables = load(list((home / "teacher_outputs").glob("*.json")))
    for table in tables:
        rows.append((f"teacher-output cache build ({table['shape'][0]} views)", table["build_seconds"]))
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_label[r["label"]].append(r)
    for label, group in by_label.items():
        wall = sum(r["wall_time_s"] for r in group)
        trained = sum(m["epoch_time_s"] for r in group for m in r["metrics"])
        rows.append((f"runs {label} ×{len(group)}: training epochs", trained))
        rows.append((f"runs {label} ×{len(group)}: evaluation", wall - trained))
    notes = []
    reasons = sorted({(r["label"], (r.get("teacher_cache") or {}).get("reason", "-")) for r in records})
    for label, reason in reasons:
        notes.append(f"teacher_cache {label}: {reason}")
    if total is not None:
        rows.append(("other (start-up, loading, teacher test, writing)", total - sum(s for _, s in rows)))
        rows.append(("TOTAL wall clock", total))
    else:
        rows.append(("TOTAL of the phases (no wall clock)", sum(s for _, s in rows)))
    return rows, notes


def show(rows: list[tuple[str, float]], notes: list[str]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{'phase'.ljust(width)}  seconds")
    for name, seconds in rows:
        print(f"{name.ljust(width)}  {seconds:7.1f}")
    for note in notes:
        print(note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.yaml"))
    parser.add_argument("--read", nargs=2, metavar=("HOME", "RUNS"), help="only read a finished job's records")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home and run store")
    parser.add_argument("extra", nargs="*", help="more `kdbench run` arguments (after --)")
    args = parser.parse_args()
    if args.read:
        show(*breakdown(Path(args.read[0]), Path(args.read[1]), None))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="kdbench-quickstart-"))
    home, runs = tmp / "home", tmp / "runs"
    env = {**os.environ, "KDBENCH_HOME": str(home)}
    command = [sys.executable, "-m", "kdbench.cli", "run", args.suite, "--runs", str(runs),
               "--results", str(ROOT / "results"), *args.extra]  # yours beside the published numbers
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=tmp, check=False)
    total = time.perf_counter() - start
    show(*breakdown(home, runs, total))
    print(f"exit status {done.returncode}; files under {tmp}" if args.keep else f"exit status {done.returncode}")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
