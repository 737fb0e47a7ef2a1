"""The scripts of ``benchmarks/`` that the code and docs point to: they exist, and the quickstart breakdown reads
only finished work."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def script(name: str) -> ModuleType:
    """A script of ``benchmarks/`` as a module (benchmarks/ is not a package, and ``pytest`` never collects it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_cited_benchmark_script_exists():
    """A docstring or a page that says "``benchmarks/x.py`` measures it" names a file that is there."""
    sources = [*ROOT.glob("kdbench/**/*.py"), *ROOT.glob("plugins/**/*.py"), *ROOT.glob("benchmarks/*.py"),
               *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    cited = {(path.relative_to(ROOT), name) for path in sources
             for name in re.findall(r"benchmarks/(\w+\.py)", path.read_text(encoding="utf-8"))}
    assert cited, "no citation found: the pattern is stale"
    assert [c for c in cited if not (ROOT / "benchmarks" / c[1]).is_file()] == []


def test_the_quickstart_breakdown_skips_an_interrupted_cache_builds_progress_file(tmp_path):
    home, runs = tmp_path / "home", tmp_path / "runs"
    tables = home / "teacher_outputs"
    tables.mkdir(parents=True)
    (tables / "abc.json").write_text(json.dumps({"shape": [162, 1437, 10], "build_seconds": 30.5}))
    (tables / "def.progress.json").write_text(json.dumps({"key": "def", "shape": [162, 1437, 10], "seconds": 4.0,
                                                          "views": []}))  # a build that was interrupted
    rows, _ = script("quickstart_breakdown").breakdown(home, runs, None)
    assert rows == [("teacher-output cache build (162 views)", 30.5), ("TOTAL of the phases (no wall clock)", 30.5)]
