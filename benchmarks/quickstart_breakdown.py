"""Where the quickstart's time goes: ``kdbench run suites/quickstart.yaml`` on an empty home, phase by phase.

    python benchmarks/quickstart_breakdown.py                      # fresh temporary home and run store
    python benchmarks/quickstart_breakdown.py --suite suites/x.yaml -- --threads 2
    python benchmarks/quickstart_breakdown.py --read HOME RUNS     # only read a finished job's records
    python benchmarks/quickstart_breakdown.py --write              # and regenerate the README's timing

``--write`` puts the measurement where the README's timing comes from: ``docs/quickstart_timings.md`` (the
machine, the code revision, every phase) and the sentence between the README's ``quickstart-timing``
markers, so the number a user reads is always one that was measured, on a named machine.

The command runs as a user runs it (a new process, imports included, progress shown, the table beside the
published numbers) with a fresh temporary
``$KDBENCH_HOME`` and run store, so the teacher is trained, the training set scored and every run trained.
The phases are read back from what the job stored: the teacher record's ``wall_time_s``, the scores'
``selection.score_seconds`` (once per scores key), each finished teacher-output table's ``build_seconds``
(not an interrupted build's ``<key>.progress.json``), and each run's ``wall_time_s``, split into its
training epochs (the sum of ``epoch_time_s``) and its per-epoch evaluation (the rest). "other" is the total
wall clock less all of those: start-up and imports, dataset and teacher loading, the teacher's final test,
writing records and the table. The record's ``teacher_cache`` decision is printed under the table.
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


def finished_tables(home: Path) -> list[Path]:
    """The JSON files of the finished teacher-output tables (``<key>.json``). An interrupted build leaves
    ``<key>.progress.json`` beside its partial table: bookkeeping for the next build, with no build time of a
    table to count, so it is skipped."""
    return [p for p in (home / "teacher_outputs").glob("*.json") if not p.name.endswith(".progress.json")]


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
    tables = load(finished_tables(home))
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


TIMINGS = ROOT / "docs" / "quickstart_timings.md"
README = ROOT / "README.md"
MARKERS = ("<!-- quickstart-timing: start -->", "<!-- quickstart-timing: end -->")


def machine() -> str:
    """The machine class in words: CPU model, the CPU kernels torch picks, cores, torch threads and build."""
    import torch

    from kdbench.run.environment import environment

    env = environment("cpu")
    return (f"{env.cpu_count}-core {env.device_name} ({env.cpu_capability} kernels), {env.torch_threads} torch "
            f"threads, torch {torch.__version__}, Python {env.python}")


def write_timings(rows: list[tuple[str, float]], notes: list[str], total: float, suite: str) -> None:
    """``docs/quickstart_timings.md`` and the README's sentence between the markers, from this measurement."""
    from kdbench.run.environment import git_revision

    when = time.strftime("%Y-%m-%d", time.gmtime())
    lines = ["# The quickstart's time, phase by phase", "",
             "Written by `python benchmarks/quickstart_breakdown.py --write` (do not edit by hand): "
             f"`kdbench run {Path(suite).relative_to(ROOT) if Path(suite).is_relative_to(ROOT) else suite}` "
             "from an empty `$KDBENCH_HOME` and run store.", "",
             f"- machine: {machine()}", f"- code: {git_revision() or 'not a git checkout'}", f"- measured: {when}", "",
             "| phase | seconds |", "|---|---:|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in rows]
    lines += ["", "Where the teacher's logits came from, per run (`teacher_cache.reason` in each record):", ""]
    lines += [f"- {note.removeprefix('teacher_cache ')}" for note in notes]
    TIMINGS.write_text("\n".join(lines) + "\n")
    sentence = (f"From an empty `$KDBENCH_HOME` the whole job took {total:.0f} s on a {machine()} "
                f"(measured {when}; [every phase](docs/quickstart_timings.md)).")
    text = README.read_text()
    start, end = (text.index(marker) for marker in MARKERS)
    README.write_text(text[:start + len(MARKERS[0])] + sentence + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.yaml"))
    parser.add_argument("--read", nargs=2, metavar=("HOME", "RUNS"), help="only read a finished job's records")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home and run store")
    parser.add_argument("--write", action="store_true",
                        help="write docs/quickstart_timings.md and the README's timing sentence from this run")
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
    rows, notes = breakdown(home, runs, total)
    show(rows, notes)
    if args.write and done.returncode == 0:
        write_timings(rows, notes, total, args.suite)
        print(f"wrote {TIMINGS} and the timing sentence of {README}")
    print(f"exit status {done.returncode}; files under {tmp}" if args.keep else f"exit status {done.returncode}")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
