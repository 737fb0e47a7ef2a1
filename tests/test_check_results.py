"""``kdbench check-results``: a contributed results folder, every record and every file, each problem one line."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.plan import ComponentRef, RunSpec, TeacherSpec
from kdbench.store import (
    DetectionRecord,
    Environment,
    EpochRecord,
    Replacement,
    RunRecord,
    RunStore,
    SelectionRecord,
    SuiteInfo,
    TeacherCacheRecord,
)
from kdbench.store.check_results import check_results
from kdbench.store.record_check import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, PERCENT
from tests.records import DATASET, ENVIRONMENT, RECIPE

TOP1 = (40.0, 70.0, 70.0, 65.0)  # per epoch: the best is 70.0, first reached at epoch 2; the last is 65.0


def spec(label: str, method: str, teacher: str | None, seed: int = 0) -> RunSpec:
    recipe = replace(RECIPE, epochs=len(TOP1))
    tspec = TeacherSpec(teacher, "1", DATASET, recipe, 0) if teacher else None
    return RunSpec(suite="s", label=label, method=ComponentRef(method, {}, "1"), student="resnet8", student_version="1",
                   dataset=DATASET, recipe=recipe, seed=seed, teacher=tspec)


def record(run: RunSpec) -> RunRecord:
    """A record as the worker writes one: headline numbers from the epochs, provenance filled in."""
    epochs = [EpochRecord(epoch=i + 1, lr=0.05, train_loss=1.0 / (i + 1), train_top1=50.0 + i, test_top1=top1,
                          test_top5=90.0 + i, epoch_time_s=0.5, train_images_per_s=200.0, loss_ce=1.0)
              for i, top1 in enumerate(TOP1)]
    return RunRecord(
        key=run.key, suite=run.suite, label=run.label, method=run.method.name, student=run.student,
        teacher=run.teacher.arch if run.teacher else None, pair=run.pair, seed=run.seed, dataset=run.dataset.name,
        spec=run, last_top1=65.0, best_top1=70.0, best_epoch=2, last_top5=93.0,
        teacher_top1=95.0 if run.teacher else None, teacher_key=run.teacher.key if run.teacher else None,
        selection=None, metrics=epochs, wall_time_s=2.0,
        train_images_per_s=200.0, environment=ENVIRONMENT, git_revision="0123abcd", finished_at=1.7e9,
    )


@pytest.fixture
def results(tmp_path) -> Path:
    """A results folder with one suite 's' of two clean records: 'ce' and 'kd'."""
    store = RunStore(tmp_path / "results")
    for run in (spec("ce", "ce", None), spec("kd", "kd", "resnet20")):
        store.write_record(run, record(run))
    store.write_suite_info(SuiteInfo(name="s", table={"metric": "best", "layout": "method_pair"}))
    return store.root


def kd_path(results: Path) -> Path:
    return results / "raw" / "s" / spec("kd", "kd", "resnet20").key / "record.json"


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def problems(folder: Path) -> list[str]:
    return [str(p) for p in check_results(folder).problems]


@pytest.mark.parametrize("where", ["", "raw", "raw/s"])
def test_a_clean_folder_has_no_problem_in_any_shape(results, where):
    report = check_results(results / where if where else results)
    assert report.problems == () and report.records == 2 and report.suites == ("s",)
    assert report.shape == {"": "results", "raw": "raw", "raw/s": "suite"}[where]


def test_an_edited_number_is_caught(results):
    path = kd_path(results)
    edit(path, lambda d: d.update(best_top1=71.5))
    shown = path.relative_to(results).as_posix()
    assert problems(results) == [f"{shown}: best_top1: 71.5, but the highest per-epoch test_top1 is 70.0 (epoch 2)"]
    edit(path, lambda d: d.update(best_top1=70.0, best_epoch=3, last_top1=70.0))  # a tie: epoch 2 reached it first
    assert problems(results) == [f"{shown}: best_epoch: 3, but the first epoch reaching the highest test_top1 is 2",
                                 f"{shown}: last_top1: 70.0, but the last epoch's test_top1 is 65.0"]
    edit(path, lambda d: d.update(best_epoch=2, last_top1=65.0))
    edit(path, lambda d: [epoch.update(test_top1=69.0) for epoch in d["metrics"][1:3]])
    assert problems(results) == [f"{shown}: best_top1: 70.0, but the highest per-epoch test_top1 is 69.0 (epoch 2)"]


def test_an_edited_spec_is_caught(results):
    path = kd_path(results)
    key = path.parent.name
    edit(path, lambda d: d["spec"]["recipe"].update(lr=0.1))  # trained with another lr than it says
    (line,) = problems(results)
    assert line.startswith(f"raw/s/{key}/record.json: spec: hashes to '") and line.endswith(
        f"', not to the record's key '{key}' (an edited spec)")
    assert f"hashes to '{key}'" not in line
    edit(path, lambda d: (d["spec"]["recipe"].update(lr=0.05), d["spec"].update(seed=1)))  # seed: spec ≠ record
    found = problems(results)
    assert f"raw/s/{key}/record.json: seed: 0, not its spec's 1" in found and len(found) == 2


def test_a_renamed_folder_and_a_moved_record_are_caught(results):
    key = kd_path(results).parent.name
    (results / "raw" / "s" / key).rename(results / "raw" / "s" / "0000000000000000")
    assert problems(results) == [f"raw/s/0000000000000000/record.json: key: '{key}', but the record is in folder "
                                 "'0000000000000000' (a renamed folder or an edited key)"]
    shutil.move(results / "raw" / "s" / "0000000000000000", results / "raw" / "other" / key)
    assert problems(results) == [f"raw/other/{key}/record.json: suite: 's', not the suite folder 'other'",
                                 f"raw/other/{key}/record.json: spec.suite: 's', not the suite folder 'other'"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["metrics"][3].update(train_loss=math.nan), ["metrics.3.train_loss: nan is not a finite number"]),
        (lambda d: d.update(wall_time_s=math.inf), ["wall_time_s: inf is not a finite number"]),
        (lambda d: d.update(teacher_top1=101.0), ["teacher_top1: 101.0 is not a percentage in [0, 100]"]),
        (lambda d: d["metrics"][0].update(train_top1=-0.5),
         ["metrics.0.train_top1: -0.5 is not a percentage in [0, 100]"]),
        (lambda d: d.update(train_images_per_s=-3.0), ["train_images_per_s: -3.0 is negative"]),
        (lambda d: d["metrics"][2].update(epoch_time_s=-1), ["metrics.2.epoch_time_s: -1.0 is negative"]),
        (lambda d: d.update(git_revision=None), ["git_revision: missing: the code revision that trained the run "
                                                 "(train from a git checkout of kdbench)"]),
        (lambda d: d.update(finished_at=0.0), ["finished_at: 0.0: missing, not a time the run finished"]),
        (lambda d: d["environment"].update(host=None, device_name=""),
         ["environment.host: missing: the record does not say where it ran",
          "environment.device_name: missing: the record does not say where it ran"]),
        (lambda d: d.pop("environment"), ["environment: Field required"]),
        (lambda d: d.update(status="failed"), ["status: Input should be 'finished'"]),
        (lambda d: d.update(schema_version=99), ["schema_version: 99: written by a newer kdbench (this one reads up "
                                                 "to 3)"]),
        (lambda d: d["metrics"].pop(), ["metrics: 3 epochs, but the spec's recipe trains 4",
                                        "last_top1: 65.0, but the last epoch's test_top1 is 70.0",
                                        "last_top5: 93.0, but the last epoch's test_top5 is 92.0"]),
        (lambda d: d["metrics"][1].update(epoch=3), ["metrics: epochs 1, 3, 3, 4, not 1 to 4 in order",
                                                     "best_epoch: 2, but the first epoch reaching the highest "
                                                     "test_top1 is 3"]),
    ],
)
def test_every_number_and_provenance_is_checked(results, change, expected):
    path = kd_path(results)
    edit(path, change)
    shown = path.relative_to(results).as_posix()
    assert problems(results) == [f"{shown}: {line}" for line in expected]


def test_a_corrupt_record_and_an_invalid_one_are_one_line_each(results):
    path = kd_path(results)
    path.write_text(path.read_text()[:200])
    (line,) = problems(results)
    assert line.startswith(f"{path.relative_to(results).as_posix()}: (file): not readable as JSON (JSONDecodeError")
    path.write_text("[1, 2]")
    assert problems(results) == [f"{path.relative_to(results).as_posix()}: (file): a JSON list, not a run record"]


def test_files_kdbench_does_not_publish_are_caught(results):
    run_dir = kd_path(results).parent
    (run_dir / "notes.txt").write_text("tuned on the test split")
    (run_dir / "failure.json").write_text("{}")
    (run_dir / "resume.pt").write_bytes(b"\0")
    (results / "raw" / "README").write_text("mine")
    (results / "raw" / "s" / "0123456789abcdef").mkdir()
    (results / "raw" / "s" / "0123456789abcdef" / "nested").mkdir()
    (results / "raw" / "s" / "suite.json").write_text(json.dumps({"name": "t"}))
    (results / "raw" / "s" / "link.json").symlink_to(kd_path(results))
    r = run_dir.relative_to(results).as_posix()
    assert sorted(problems(results)) == sorted([
        "raw/README: (file): not a file kdbench writes there",
        "raw/s/0123456789abcdef/nested/: (folder): not a folder kdbench writes there",
        "raw/s/0123456789abcdef/: record.json: missing: a published run's folder holds its record",
        "raw/s/link.json: (file): a link; kdbench writes plain files",
        "raw/s/suite.json: name: 't', but it is in the folder of suite 's'",
        f"{r}/failure.json: (file): a failure record of the run store; kdbench publish copies finished records only",
        f"{r}/notes.txt: (file): not a file kdbench writes there",
        f"{r}/resume.pt: (file): a resume checkpoint of the run store; kdbench publish copies finished records only",
    ])


def test_a_folder_that_is_not_a_results_folder_is_one_error(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(KdbenchError, match="is not a results folder"):
        check_results(tmp_path / "notes")
    with pytest.raises(KdbenchError, match="no such folder"):
        check_results(tmp_path / "missing")


def test_range_rules_name_record_fields():
    """A renamed field would silently leave its range unchecked: every name the rules use is a field."""
    models = (RunRecord, EpochRecord, SelectionRecord, DetectionRecord, TeacherCacheRecord, Replacement, Environment)
    fields = {name for model in models for name in model.model_fields}
    assert (PERCENT | FRACTION | NON_NEGATIVE | AT_LEAST_ONE) <= fields


def published(tmp_path: Path, results: Path) -> Path:
    """The fixture's records published through the CLI, as a contributor would: tables and leaderboard written."""
    runs = tmp_path / "runs"
    shutil.copytree(results, runs)
    target = tmp_path / "submitted"
    assert main(["publish", "s", "--runs", str(runs), "--results", str(target)]) == 0
    return target


def test_check_results_command(tmp_path, results, capsys):
    """Through the CLI: a folder as publish (and a release) leaves it passes; a table edited by hand, a stray file,
    a file that is no release, a derived file gone and an edited number are one line each, and exit 2."""
    target = published(tmp_path, results)
    assert main(["leaderboard", "--release", "v1", "--results", str(target)]) == 0
    capsys.readouterr()
    assert main(["check-results", str(target)]) == 0
    assert capsys.readouterr().out.strip() == f"{target}: 2 record(s) of 1 suite(s) checked, no problem"
    table = target / "s" / "table.md"
    table.write_text(table.read_text() + "\nTuned on the test split, sorry.\n")
    (target / "leaderboard" / "notes.md").write_text("mine")
    (target / "releases" / "v2.json").write_text("{}")
    (target / "s" / "runs.csv").unlink()
    edit(kd_path(target), lambda d: d.update(last_top1=66.0))
    assert main(["check-results", str(target)]) == 2
    captured = capsys.readouterr()
    shown = kd_path(target).relative_to(target).as_posix()
    assert captured.out.splitlines() == [
        f"{shown}: last_top1: 66.0, but the last epoch's test_top1 is 65.0",
        "leaderboard/notes.md: (file): not a file kdbench writes there",
        "releases/v2.json: (file): not a file kdbench writes there",
        "s/table.md: (contents): differs from what kdbench writes from the records here: rebuild it (kdbench "
        "publish, kdbench leaderboard); derived files are never edited by hand",
        "s/runs.csv: (file): missing: kdbench writes it from the records (run kdbench publish, or kdbench "
        "leaderboard)",
    ]
    assert captured.err.strip() == f"kdbench: error: 5 problem(s) in {target} (2 record(s) of 1 suite(s)), one per " \
                                   "line above"


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: (tmp / "raw").mkdir(), "no run records to check"),
    (lambda tmp: (tmp / "notes.txt").write_text("x"), "is not a results folder: it holds no raw/ folder"),
])
def test_check_results_user_errors_are_one_line_and_exit_2(tmp_path, capsys, make, message):
    make(tmp_path)
    assert main(["check-results", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert not captured.out and captured.err.count("\n") == 1 and message in captured.err
