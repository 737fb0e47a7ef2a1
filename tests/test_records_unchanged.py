"""Refactoring changes no result: the reduced quickstart gives the records it gave before.

``tests/data/quickstart_reduced_records.json`` holds the six records of this suite as an earlier kdbench
wrote them. Run keys and record fields must match everywhere (they are computed, not measured); numbers
match to the last digit under the torch build, processor and memory format that wrote the file, which the README's
reproduction promise is about, and are not compared elsewhere (another CPU picks other kernels).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from kdbench.run.environment import environment

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((ROOT / "tests" / "data" / "quickstart_reduced_records.json").read_text())
MEASURED = {"epoch_time_s", "train_images_per_s", "wall_time_s", "finished_at", "git_revision", "environment",
            "saved_at", "score_seconds", "built_seconds",
            "reason"}  # teacher_cache.reason: `auto` explains its choice with the costs it measured


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def shape(value):
    """Field names and nesting, numbers left out."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__ if not isinstance(value, int | float) or isinstance(value, bool) else "number"


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("unchanged")
    suite = yaml.safe_load((ROOT / "suites" / "quickstart.yaml").read_text())
    suite["dataset"]["params"]["image_size"] = 8
    suite["recipe"].update(epochs=2, milestones=[1])
    suite["teacher_recipe"] = {"epochs": 2, "milestones": []}
    suite["seeds"] = [0]
    path = tmp / "quick.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    # a fresh process, as a user's run: nothing an earlier test left in this one (torch's threads, its backend
    # flags) can move the numbers
    env = {**os.environ, "KDBENCH_HOME": str(tmp / "home"), "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "kdbench.cli", "run", str(path), "--quiet", "--runs",
                           str(tmp / "runs")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = [json.loads(p.read_text()) for p in (tmp / "runs" / "raw" / "quickstart").glob("*/record.json")]
    return {r["label"]: without_timings(r) for r in found}


def test_run_keys_and_record_fields_are_unchanged(records):
    golden = without_timings(GOLDEN["records"])
    assert sorted(records) == sorted(golden)
    for label, record in records.items():
        assert record["key"] == golden[label]["key"], label
        assert record["teacher_key"] == golden[label]["teacher_key"], label
        assert shape(record) == shape(golden[label]), label


def test_record_numbers_are_unchanged_on_the_machine_that_wrote_them(records):
    here = environment("cpu", "serial")
    written_by = (GOLDEN["torch"], GOLDEN["device_name"], GOLDEN["cpu_capability"], GOLDEN["memory_format"])
    if (here.torch, here.device_name, here.cpu_capability, here.memory_format) != written_by:
        pytest.skip(f"numbers are compared under torch {GOLDEN['torch']} on {GOLDEN['device_name']} "
                    f"({GOLDEN['cpu_capability']} kernels, {GOLDEN['memory_format']}) only; this is torch "
                    f"{torch.__version__} on {here.device_name} ({here.cpu_capability}, {here.memory_format})")
    for label, record in records.items():
        assert record == without_timings(GOLDEN["records"][label]), label
