"""``kdbench tables`` that tells the truth: yours beside the published in the table's own rows and order, how many
of a suite's runs have finished, and the nearest suite for a name the run store does not hold."""

from __future__ import annotations

from pathlib import Path

from kdbench.cli import main
from kdbench.plan import expand, load_suite
from kdbench.registry import load_registry
from kdbench.store import RunStore, SuiteInfo
from kdbench.tables import method_pair_table, results_frame
from kdbench.tables.reproduction import reproduction_table
from tests.records import make_record, make_spec

# Suite order: ce, then "zz_kd", then "aa_mse" (an order neither alphabetical nor the records' own), on two pairs.
ENTRIES = (("ce", "ce", 0), ("zz_kd", "kd", 1), ("aa_mse", "mse_kd", 2))
PAIRS = (("resnet32", 0), ("resnet20", 1))


def fill(store: RunStore, suite: str = "s", best: float = 90.0, seeds=(0, 1)) -> None:
    for seed in seeds:
        for label, method, position in ENTRIES:
            for teacher, pair in PAIRS if method != "ce" else ((None, 0),):
                spec = make_spec(label, method, teacher, "resnet8", seed, suite=suite, order=(pair, position))
                store.write_record(spec, make_record(spec, best + seed + position, best + seed, teacher_top1=95.0))
    store.write_suite_info(SuiteInfo(name=suite, table={"metric": "best", "layout": "method_pair"}))


def block_rows(markdown: str) -> list[tuple[str, str]]:
    """(row, pair) of every line of a yours-vs-published block."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and "→" in line]
    return [tuple(cell.strip() for cell in line.strip("|").split("|")[:2]) for line in lines]


def test_yours_vs_published_has_the_tables_row_names_in_its_order(tmp_path):
    runs, published = RunStore(tmp_path / "runs"), RunStore(tmp_path / "results")
    fill(runs), fill(published, best=89.0)
    yours = results_frame(runs.suite_dir("s"))
    table_order = method_pair_table(yours).tidy["row"].drop_duplicates().tolist()
    assert table_order == ["Teacher", "Student (scratch)", "zz_kd", "aa_mse"]
    block = reproduction_table(yours, results_frame(published.suite_dir("s")))
    assert block_rows(block.markdown) == [
        ("Teacher", "resnet32 → resnet8"), ("Teacher", "resnet20 → resnet8"),
        ("Student (scratch)", "– → resnet8"),
        ("zz_kd", "resnet32 → resnet8"), ("zz_kd", "resnet20 → resnet8"),
        ("aa_mse", "resnet32 → resnet8"), ("aa_mse", "resnet20 → resnet8"),
    ]
    assert block.tidy["row"].drop_duplicates().tolist() == table_order
    scratch = block.tidy.set_index("row").loc["Student (scratch)"]
    assert (scratch.yours_mean, scratch.published_mean, scratch.same_runs) == (90.5, 89.5, 2)  # same keys


def test_tables_prints_yours_vs_published_when_the_suite_is_published(tmp_path, capsys):
    runs, results = tmp_path / "runs", tmp_path / "results"
    fill(RunStore(runs)), fill(RunStore(results), best=89.0)
    assert main(["tables", "s", "--runs", str(runs), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert f"### Yours vs published ({results / 'raw' / 's'})" in out
    assert "| Student (scratch) | – → resnet8" in out and (runs / "s" / "reproduction.csv").is_file()
    assert main(["tables", "s", "--runs", str(runs), "--results", str(tmp_path / "nothing")]) == 0
    assert "Yours vs published" not in capsys.readouterr().out


def test_tables_on_a_partial_store_says_how_many_runs_finished(tmp_path, capsys):
    suite = tmp_path / "part.yaml"
    suite.write_text("dataset: {name: digits, params: {image_size: 8}}\nseeds: [0, 1]\n"
                     "pairs: [{teacher: resnet20, student: resnet8}]\nmethods: [ce, kd]\n")
    store = RunStore(tmp_path / "runs")
    plan = expand(load_suite(suite), load_registry())
    for spec in plan.runs[:3]:
        store.write_record(spec, make_record(spec, 90.0, 89.0, teacher_top1=95.0 if spec.teacher else None))
    store.write_suite_info(SuiteInfo(name="part", file=str(suite)))
    args = ["tables", "part", "--runs", str(store.root), "--results", str(tmp_path / "none")]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[0] == "3 of 4 runs of part finished; the table shows those"
    suite.unlink()  # the plan cannot be known any more: nothing rather than a guess
    assert main(args) == 0
    assert "runs of part finished" not in capsys.readouterr().out


def test_tables_of_an_unknown_suite_names_the_nearest(tmp_path, capsys):
    fill(RunStore(tmp_path / "runs"), suite="quickstart")
    assert main(["tables", "quikstart", "--runs", str(tmp_path / "runs")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"kdbench: error: no suite 'quikstart' in the run store {Path(tmp_path / 'runs')}; "
                    "did you mean 'quickstart'?")
