"""The run store: typed records that round-trip, one rule for "done", and records that fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kdbench.cli import main
from kdbench.errors import KdbenchWarning
from kdbench.plan import RunSpec, expand, load_suite
from kdbench.registry import load_registry
from kdbench.store import SCHEMA_VERSION, FailureRecord, RunRecord, RunStore, iter_records, read_run_record
from tests.records import make_record, make_spec
from tests.test_cli import reduced_quickstart

ROOT = Path(__file__).resolve().parent.parent


def test_a_record_written_by_the_store_round_trips_through_run_record(tmp_path):
    spec = make_spec("kd+LR", "kd", "resnet20", "resnet8", 2, order=(1, 3))
    record = make_record(spec, best=91.5, last=90.25, teacher_top1=95.0)
    path = RunStore(tmp_path).write_record(spec, record)
    back = read_run_record(path)
    assert back == record and back.spec == spec and back.spec.key == spec.key == record.key
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["spec"] == spec.to_dict()
    assert RunRecord.model_validate(on_disk).model_dump(mode="json") == on_disk
    assert back.metrics[0].losses == {"ce": 1.0}


def test_published_records_are_valid_and_keep_their_keys():
    """The committed quickstart records parse as RunRecords, and the suite still expands to their keys."""
    raw = ROOT / "results" / "raw" / "quickstart"
    records = [read_run_record(p) for p in sorted(raw.glob("*/record.json"))]
    assert len(records) == 18 and all(r is not None for r in records)
    assert all(r.spec.key == r.key for r in records)
    plan = expand(load_suite(ROOT / "suites" / "quickstart.yaml"), load_registry())
    assert {r.key for r in plan.runs} == {r.key for r in records}


@pytest.mark.parametrize(
    ("change", "problem"),
    [(lambda d: d.pop("best_top1"), "best_top1: Field required"),
     (lambda d: d.update(best_top_1=3.0), "best_top_1: Extra inputs"),
     (lambda d: d["metrics"][0].update(accuracy=1.0), "metrics.0"),
     (lambda d: d.update(spec={"suite": "s"}), "spec"),
     ("partial", "not readable as JSON")],
    ids=["missing", "renamed", "epoch-extra", "spec", "partial-file"],
)
def test_a_corrupt_record_is_skipped_with_a_one_line_warning(tmp_path, change, problem):
    spec = make_spec("kd", "kd", "resnet20", "resnet8", 0)
    store = RunStore(tmp_path)
    path = store.write_record(spec, make_record(spec, 90.0, 89.0))
    if change == "partial":
        path.write_text(path.read_text()[:200])  # a write cut short
    else:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    with pytest.warns(KdbenchWarning) as caught:
        assert read_run_record(path) is None
    (warning,) = caught
    message = str(warning.message)
    assert "\n" not in message and "record.json" in message and problem in message and "skipped" in message
    with pytest.warns(KdbenchWarning):
        assert list(iter_records(tmp_path)) == [] and not store.is_done(spec)


def test_failure_records_round_trip_and_never_count_as_done(tmp_path):
    spec = make_spec("kd", "kd", "resnet20", "resnet8", 0)
    store = RunStore(tmp_path)
    path = store.write_failure(spec, FailureRecord(error="TrainingDiverged: nan", spec=spec, at=1.0))
    assert FailureRecord.model_validate_json(path.read_text()).spec == spec
    assert not store.is_done(spec) and read_run_record(store.record_path(spec)) is None


def test_a_failure_is_kept_where_its_path_says_until_a_record_replaces_it(tmp_path):
    spec = make_spec("kd", "kd", "resnet20", "resnet8", 0, suite="s")
    store = RunStore(tmp_path)
    path = store.write_failure(spec, FailureRecord(error="RuntimeError: boom", traceback="Traceback ...", spec=spec,
                                                   at=1.0))
    assert path == store.failure_path(spec) == tmp_path / "raw" / "s" / spec.key / "failure.json"
    assert FailureRecord.model_validate_json(path.read_text()).traceback == "Traceback ..."
    store.write_record(spec, make_record(spec, 90.0, 89.0))
    assert not store.failure_path(spec).exists()


def test_one_rule_for_done_across_suites(tmp_path):
    """A run finished under one suite is done for another: its dry run says so, its run skips and files it."""
    store = RunStore(tmp_path)
    spec = make_spec("kd", "kd", "resnet20", "resnet8", 0, suite="first")
    store.write_record(spec, make_record(spec, 90.0, 89.0))
    other = RunSpec.from_dict({**spec.to_dict(), "suite": "second", "label": "KD"})
    assert other.key == spec.key and store.is_done(other)
    assert not store.record_path(other).exists()
    adopted = store.finished(other)
    assert adopted.suite == "second" and adopted.label == "KD" and adopted.best_top1 == 90.0
    assert read_run_record(store.record_path(other)) == adopted


def test_dry_run_and_run_of_another_suite_agree_on_what_is_done(tmp_path, capsys, monkeypatch):
    first = reduced_quickstart(tmp_path, methods=["ce"], name="first")
    results = tmp_path / "results"
    assert main(["run", str(first), "--quiet", "--runs", str(results)]) == 0
    data = yaml.safe_load(first.read_text())
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump({**data, "name": "second", "methods": ["ce", "kd"]}))
    capsys.readouterr()
    assert main(["run", str(second), "--dry-run", "--runs", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 runs, 1 already finished" in out
    assert out.count(" done ") == 1 and out.count(" todo ") == 1

    from kdbench.run import worker

    trained, real_train = [], worker.Worker._train

    def train_and_note(self, spec, observer=None):
        trained.append(spec.label)
        return real_train(self, spec, observer)

    monkeypatch.setattr(worker.Worker, "_train", train_and_note)
    assert main(["run", str(second), "--quiet", "--runs", str(results)]) == 0
    assert trained == ["kd"]  # the ce run was done under the first suite: skipped, not retrained
    assert "skipped  ce" in capsys.readouterr().out
    assert len(list((results / "raw" / "second").glob("*/record.json"))) == 2
