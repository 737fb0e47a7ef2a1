"""Commands that only read records import neither torch nor matplotlib (about 470 MB and 2 s of imports), and the
published tree is held without per-epoch metrics: what keeps ``kdbench leaderboard`` over 10,000 records under
500 MB (``benchmarks/leaderboard_scale.py``)."""

from __future__ import annotations

import subprocess
import sys

from kdbench.store import RunStore, iter_records
from kdbench.store.published_files import published_files
from tests.test_runs_table import publish

LEADERBOARD = """
import sys
from kdbench.cli import main
code = main(["leaderboard", "--results", sys.argv[1]])
print(code, [name for name in ("torch", "matplotlib") if name in sys.modules])
"""


def test_the_leaderboard_command_imports_neither_torch_nor_matplotlib(tmp_path):
    publish(RunStore(tmp_path / "results"))
    proc = subprocess.run([sys.executable, "-c", LEADERBOARD, str(tmp_path / "results")], capture_output=True,
                          text=True, timeout=120, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    assert (tmp_path / "results" / "leaderboard" / "index.html").is_file()
    assert (tmp_path / "results" / "runs.parquet").is_file()


def test_the_package_namespaces_import_no_module_behind_them():
    code = ("import sys, kdbench.contracts, kdbench.plan, kdbench.registry, kdbench.run, kdbench.store, "
            "kdbench.tables, kdbench.cli; print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "False"


def test_published_files_keep_each_records_test_accuracies_and_drop_the_rest_of_its_epochs(tmp_path):
    store = RunStore(tmp_path / "results")
    publish(store)
    files = published_files(store)
    whole = {r.key: r for r in iter_records(store.root / "raw")}
    assert len(files) == len(whole) == 8
    for file in files:
        assert file.record.metrics == [] and file.record.key in whole
        assert file.test_top1_per_epoch == tuple(e.test_top1 for e in whole[file.record.key].metrics)
        assert file.record.model_copy(update={"metrics": whole[file.record.key].metrics}) == whole[file.record.key]
