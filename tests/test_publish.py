"""Publishing: records go from the run store to the published results, never silently over different ones."""

from __future__ import annotations

import json

import pytest

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.store import RunStore, SuiteInfo, publish_suite, read_run_record
from tests.records import make_record, make_spec


def fill(store: RunStore, suite: str = "s", best: float = 90.0, seeds=(0, 1)) -> list:
    specs = []
    for seed in seeds:
        for label, method, teacher in (("ce", "ce", None), ("kd", "kd", "resnet20")):
            order = (0, 0 if method == "ce" else 1)
            spec = make_spec(label, method, teacher, "resnet8", seed, suite=suite, order=order)
            store.write_record(spec, make_record(spec, best + seed, best - 1 + seed, teacher_top1=95.0))
            specs.append(spec)
    store.write_suite_info(SuiteInfo(name=suite, table={"metric": "best", "layout": "method_pair"}))
    return specs


def test_publish_copies_records_then_finds_them_unchanged(tmp_path):
    runs, published = RunStore(tmp_path / "runs"), RunStore(tmp_path / "results")
    specs = fill(runs)
    report = publish_suite(runs, published, "s")
    assert len(report.added) == 4 and not report.replaced and not report.unchanged
    for spec in specs:
        assert read_run_record(published.record_path(spec)) == read_run_record(runs.record_path(spec))
    assert (published.suite_dir("s") / "suite.json").is_file()
    again = publish_suite(runs, published, "s")
    assert len(again.unchanged) == 4 and again.written == 0


@pytest.mark.parametrize(("given", "published_as"), [
    ("/home/ada/kdbench/suites/quickstart.yaml", "suites/quickstart.yaml"),
    ("/tmp/mine.yaml", "mine.yaml"),
    ("suites/digits_eta.yaml", "suites/digits_eta.yaml"),
])
def test_a_published_suite_names_no_path_of_the_machine_it_ran_on(tmp_path, given, published_as):
    runs, published = RunStore(tmp_path / "runs"), RunStore(tmp_path / "results")
    fill(runs)
    runs.write_suite_info(SuiteInfo(name="s", file=given, table={"metric": "best"}))
    publish_suite(runs, published, "s")
    assert json.loads((published.suite_dir("s") / "suite.json").read_text())["file"] == published_as
    assert json.loads((runs.suite_dir("s") / "suite.json").read_text())["file"] == given  # the run store's own


def test_the_committed_results_name_no_absolute_path():
    """What is published travels with the repository: no suite.json of it names a path of one machine."""
    from pathlib import Path

    infos = sorted((Path(__file__).resolve().parents[1] / "results" / "raw").glob("*/suite.json"))
    assert len(infos) >= 14
    for info in infos:
        file = json.loads(info.read_text())["file"]
        assert not Path(file).is_absolute(), f"{info}: {file}"


def test_a_different_record_needs_replace_and_is_noted(tmp_path):
    runs, published = RunStore(tmp_path / "runs"), RunStore(tmp_path / "results")
    specs = fill(runs)
    publish_suite(runs, published, "s")
    before = {p: p.read_bytes() for p in published.root.rglob("record.json")}
    fill(runs, best=80.0)  # the same runs trained again, with other numbers
    with pytest.raises(KdbenchError, match=r"4 published record\(s\) of 's' differ .* pass --replace"):
        publish_suite(runs, published, "s")
    assert before == {p: p.read_bytes() for p in published.root.rglob("record.json")}  # nothing was touched
    report = publish_suite(runs, published, "s", replace=True)
    assert len(report.replaced) == 4
    record = read_run_record(published.record_path(specs[1]))
    assert record.best_top1 == 80.0
    (note,) = record.replaced
    assert note.best_top1 == 90.0 and note.last_top1 == 89.0 and note.host == "testhost"
    assert json.loads(published.record_path(specs[1]).read_text())["replaced"][0]["best_top1"] == 90.0


def test_corrupt_records_are_skipped_with_a_warning_and_never_published(tmp_path):
    runs, published = RunStore(tmp_path / "runs"), RunStore(tmp_path / "results")
    specs = fill(runs)
    broken = runs.record_path(specs[0])
    broken.write_text(broken.read_text()[:100])
    with pytest.warns(UserWarning, match="not readable as JSON"):
        report = publish_suite(runs, published, "s")
    assert len(report.added) == 3 and not published.record_path(specs[0]).exists()


def foreign_folder(tmp):
    """Runs to publish, and a --results folder that holds someone's files but no raw/."""
    fill(RunStore(tmp / "runs"))
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "notes.txt").write_text("mine")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda tmp: None, ["publish", "nope"], "no suite 'nope' in the run store"),
        (lambda tmp: (tmp / "runs" / "raw" / "empty").mkdir(parents=True), ["publish", "empty"],
         "suite 'empty' has no finished runs"),
        (lambda tmp: foreign_folder(tmp), ["publish", "s", "--results", "elsewhere"],
         "elsewhere is not a kdbench results folder"),
        (lambda tmp: None, ["leaderboard", "--results", "results"], "no published run records"),
    ],
    ids=["unknown-suite", "no-finished-runs", "not-a-results-folder", "nothing-published"],
)
def test_bad_publish_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, setup, args, message):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    assert main([*args, "--runs", "runs"] if args[0] == "publish" else args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdbench: error: ") and message in lines[0], lines


def test_publish_command_writes_tables_and_leaderboard(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fill(RunStore(tmp_path / "runs"))
    assert main(["publish", "s", "--runs", "runs"]) == 0
    out = capsys.readouterr().out
    assert "published s: 4 new, 0 replaced, 0 already published" in out
    for name in ("s/table.md", "s/table.csv", "s/runs.csv", "leaderboard/digits.csv", "leaderboard/index.html"):
        assert (tmp_path / "results" / name).is_file(), name
    assert main(["publish", "s", "--runs", "runs"]) == 0
    assert "0 new, 0 replaced, 4 already published" in capsys.readouterr().out
