"""``kdbench leaderboard`` at scale: 10,000 published records made from the committed ones, then the build.

Why a script and not a pytest-benchmark: the target (issue 23 §3) is the whole command on a quiet 2-core
machine, from reading the records to the written page, in at most 15 s and 500 MB, with a page of at most
3 MB; peak memory needs a fresh process, which pytest-benchmark does not give.

    python benchmarks/leaderboard_scale.py                 # 10,000 records in a temporary folder, then the build
    python benchmarks/leaderboard_scale.py --records 2000  # fewer
    python benchmarks/leaderboard_scale.py --keep lb_scale   # keep the folder (results/raw/... and leaderboard/)

How the records are made: the committed quickstart records are the templates (one per method
entry of the quickstart). Each new record is a template with another benchmark (the dataset's image size,
one of them with label noise), another teacher → student pair, other method parameters (the variant) and
another seed; its spec, key and teacher key are recomputed from the changed spec, its numbers jittered with
a seeded generator, and it stays a valid ``RunRecord`` (one in 500 is validated on the way, to be sure).
That gives what a grown publication looks like: 4 benchmarks × 10 pairs × 84 variants × 3 seeds (3 seeds per row,
as every kdbench suite runs), 3,334 leaderboard rows (``--seeds 5``: 50 variants, 2,000 rows).

The build runs in a child process (``--build DIR``), the same steps ``kdbench leaderboard`` takes:
``published_files``, then ``write_leaderboard`` and ``write_runs_table``, under one GC pause. It prints the
seconds of the whole child (Python start and imports included), of reading and of building, the child's peak
resident memory (``getrusage``, its own and that of any process it started) and the size of the page.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdbench.plan.spec import RunSpec
from kdbench.store import RunRecord

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "results" / "raw" / "quickstart"  # one template per method entry, one device class
#: (image size, label-noise rate): each is another benchmark.
BENCHMARKS = [(16, 0.0), (24, 0.0), (32, 0.0), (16, 0.2)]
PAIRS = [("resnet20", "resnet8"), ("resnet32", "resnet14"), ("resnet56", "resnet20"), ("resnet110", "resnet32"),
         ("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2"), ("wrn_40_2", "wrn_40_1"), ("vgg13", "vgg8"),
         ("resnet50", "MobileNetV2"), ("resnet32x4", "ShuffleV2")]
SEEDS = 3  # per row (``--seeds``): what every kdbench suite uses
VARIANTS = 50  # per pair and benchmark: the student from scratch and 49 distilled variants (fewer seeds: more)
REVISIONS = ["2aa608955ce28ed4fb32fbb013e47d075b231e96", "d560e98a1c0f3b5e7d9a2c4e6f8091a3b5c7d9e1",
             "5bbc744e2f4a6c8e0a1b3d5f7091a2b4c6d8e0f2"]
DAY = 86400.0


def templates() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The committed records as JSON: the student from scratch, and the distilled entries (seed 0 of each)."""
    records = [json.loads(p.read_text()) for p in sorted(TEMPLATES.rglob("record.json"))]
    by_label = {r["label"]: r for r in sorted(records, key=lambda r: r["seed"], reverse=True)}
    scratch = [r for r in by_label.values() if r["teacher"] is None]
    distilled = [r for label, r in sorted(by_label.items()) if r["teacher"] is not None]
    if not scratch or not distilled:
        raise SystemExit(f"{TEMPLATES}: needs a student from scratch and distilled records as templates")
    return scratch[0], distilled


def _dataset(template: dict[str, Any], size: int, noise: float) -> dict[str, Any]:
    dataset = json.loads(json.dumps(template["spec"]["dataset"]))
    dataset["params"]["image_size"] = size
    if noise:
        dataset["label_noise"] = {"rate": noise, "kind": "symmetric", "seed": 0}
    return dataset


def _variant_params(template: dict[str, Any], j: int) -> dict[str, Any]:
    """The template's spec with its method's first float parameter moved by ``j`` steps (``j`` = 0: as is)."""
    spec = json.loads(json.dumps(template["spec"]))
    params = spec["method"]["params"]
    floats = sorted(k for k, v in params.items() if isinstance(v, float))
    if j and floats:
        params[floats[0]] = round(params[floats[0]] + 0.25 * j, 4)
    return spec


def make_records(count: int, seeds: int = SEEDS, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` record dicts (JSON form), each a valid RunRecord with its own key: ``seeds`` runs per row, as many
    variants per pair as it takes (at least :data:`VARIANTS`)."""
    rng = random.Random(seed)
    scratch, distilled = templates()
    variants = max(VARIANTS, math.ceil(count / (len(BENCHMARKS) * len(PAIRS) * seeds)))
    made = 0
    for b, (size, noise) in enumerate(BENCHMARKS):
        for p, (teacher, student) in enumerate(PAIRS):
            teacher_top1 = 70.0 + 5.0 * rng.random()
            for v in range(variants):
                template = scratch if v == 0 else distilled[(v - 1) % len(distilled)]
                spec = _variant_params(template, 0 if v == 0 else (v - 1) // len(distilled))
                spec["dataset"] = _dataset(template, size, noise)
                spec["student"], spec["suite"] = student, f"scale_{b}"
                spec["order"] = [p, v]
                if spec["teacher"] is not None:
                    spec["teacher"]["arch"], spec["teacher"]["dataset"] = teacher, spec["dataset"]
                level = 60.0 + 2.0 * v / variants + rng.gauss(0, 1.0) - 3.0 * noise
                for s in range(seeds):
                    if made == count:
                        return
                    yield _record(template, spec, s, level, teacher_top1 if spec["teacher"] else None, rng)
                    made += 1
    if made < count:
        raise SystemExit(f"only {made} distinct records can be made; ask for fewer")


def _record(template: dict[str, Any], spec: dict[str, Any], seed: int, level: float, teacher_top1: float | None,
            rng: random.Random) -> dict[str, Any]:
    spec = {**spec, "seed": seed}
    run = RunSpec.from_dict(spec)
    best = min(99.9, level + rng.gauss(0, 0.6))
    record = {**template, "spec": run.to_dict(), "key": run.key, "suite": run.suite, "label": run.label,
              "student": run.student, "teacher": run.teacher.arch if run.teacher else None, "pair": run.pair,
              "seed": seed, "best_top1": best, "last_top1": best - abs(rng.gauss(0, 0.3)),
              "teacher_top1": teacher_top1, "teacher_key": run.teacher.key if run.teacher else None,
              "wall_time_s": template["wall_time_s"] * rng.uniform(0.8, 1.2),
              "git_revision": rng.choice(REVISIONS), "finished_at": template["finished_at"] - rng.uniform(0, 30) * DAY}
    record.pop("replaced", None)
    return record


def write_records(root: Path, count: int, seeds: int = SEEDS) -> int:
    """Write ``count`` records under ``root/raw/<suite>/<key>/record.json`` (as the store writes them)."""
    written = 0
    for i, record in enumerate(make_records(count, seeds)):
        if i % 500 == 0:
            RunRecord.model_validate(record)  # the made records are records
        path = root / "raw" / record["suite"] / record["key"] / "record.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        written += 1
    return written


def build(results: Path) -> None:
    """The child: what ``kdbench leaderboard --results DIR`` does, timed; one JSON line on stdout."""
    started = time.perf_counter()
    from kdbench.store import RunStore
    from kdbench.store.publish import paused_gc
    from kdbench.store.published_files import one_per_run, published_files
    from kdbench.tables.leaderboard_files import write_leaderboard
    from kdbench.tables.runs_table import write_runs_table

    imported = time.perf_counter()
    imported_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the interpreter and its imports alone
    store = RunStore(results)
    with paused_gc():  # as kdbench.cli.results.write_leaderboard runs the same three steps
        files = published_files(store)
        records = one_per_run(files)
        read = time.perf_counter()
        boards, paths = write_leaderboard(store, records, release="scale", built_on="2026-01-01")
        paths.append(write_runs_table(results, files))
        done = time.perf_counter()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    page = results / "leaderboard" / "index.html"
    print(json.dumps({"records": len(records), "rows": sum(len(b.rows) for b in boards),
                      "import_s": imported - started, "read_s": read - imported, "build_s": done - read,
                      "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
                      "peak_mb": max(own.ru_maxrss, children.ru_maxrss) / 1024, "imported_mb": imported_kb / 1024,
                      "page_mb": page.stat().st_size / 1e6, "files": len(paths)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per row (default {SEEDS})")
    parser.add_argument("--keep", type=Path, help="make the records here and keep them (default: a temporary folder)")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.build:
        build(args.build)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="kdbench_lb_scale_"))
    try:
        results = folder / "results"
        if not (results / "raw").is_dir():
            started = time.perf_counter()
            written = write_records(results, args.records, args.seeds)
            print(f"made {written} records under {results / 'raw'} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--build", str(results)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
        wall = time.perf_counter() - started
        if child.returncode:
            raise SystemExit(child.stderr)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{figures['records']} records, {figures['rows']} rows: {wall:.1f} s in all, {figures['cpu_s']:.1f} s "
              f"of CPU (imports {figures['import_s']:.1f} s, reading {figures['read_s']:.1f} s, building "
              f"{figures['build_s']:.1f} s); peak {figures['peak_mb']:.0f} MB resident "
              f"({figures['imported_mb']:.0f} MB after the imports); page {figures['page_mb']:.2f} MB")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
