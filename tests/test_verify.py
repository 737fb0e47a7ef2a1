"""``kdbench verify``: a seeded sample of published records re-trained, published vs re-run, exit 1 beyond tolerance."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from kdbench.cli import main
from kdbench.run.verify import Verification, sample
from kdbench.store import RunStore, publish_suite
from tests.records import ENVIRONMENT, make_record, make_spec

# Two runs on 64 synthetic 8 px images, one epoch each, a one-epoch teacher: a second or two on a CPU.
TINY = """
    name: tiny
    dataset: {name: synthetic, params: {num_train: 64, num_test: 32, image_size: 8, num_classes: 4}}
    recipe: {epochs: 1, batch_size: 32, lr: 0.05, milestones: []}
    teacher_recipe: {epochs: 1, milestones: []}
    seeds: [0]
    pairs: [{teacher: resnet20, student: resnet8}]
    methods: [ce, kd]
"""


def records_with_keys(count: int) -> list:
    return [make_record(make_spec("ce", "ce", None, "resnet8", seed), 90.0, 90.0) for seed in range(count)]


def test_the_sample_is_seeded_sorted_and_never_larger_than_the_suite():
    records = records_with_keys(8)
    keys = {r.key for r in records}
    drawn = [r.key for r in sample(records, 3, seed=0)]
    assert len(drawn) == 3 and set(drawn) <= keys and drawn == sorted(drawn)
    assert drawn == [r.key for r in sample(list(reversed(records)), 3, seed=0)]  # whatever order they are read in
    assert len({tuple(r.key for r in sample(records, 3, seed=s)) for s in range(10)}) > 1  # the seed matters
    assert sorted(r.key for r in sample(records, 20, seed=5)) == sorted(keys)


def test_a_verification_is_within_only_when_best_and_last_both_are():
    published = make_record(make_spec("kd", "kd", "resnet20", "resnet8", 0), 80.0, 79.0)
    close = published.model_copy(update={"best_top1": 80.5, "last_top1": 78.5})
    assert Verification(published, close, tolerance=0.5).within
    assert not Verification(published, close, tolerance=0.4).within
    last_only = published.model_copy(update={"last_top1": 77.0})
    check = Verification(published, last_only, tolerance=1.0)
    assert check.delta_best == 0.0 and check.delta_last == -2.0 and not check.within
    assert not Verification(published, None, tolerance=100.0, error="TrainingDiverged: nan").within
    elsewhere = published.model_copy(update={"environment": ENVIRONMENT.model_copy(update={"torch_threads": 7})})
    assert check.same_machine and not Verification(published, elsewhere, 1.0).same_machine


def rows(out: str) -> dict[str, list[str]]:
    """The verify table's rows by label: key, label, pair (3 words), seed, published, re-run, Δs, machine, verdict."""
    found = {}
    for line in out.splitlines():
        if re.match(r"[0-9a-f]{16}  ", line):
            cells = line.split()
            found[cells[1]] = cells
    return found


def test_verify_command_reruns_published_records_and_catches_an_edit(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY).lstrip())
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert main(["run", str(suite), "--quiet", "--threads", "1", "--runs", str(runs), "--results", str(results)]) == 0
    publish_suite(RunStore(runs), RunStore(results), "tiny")
    published = {p.parent.name: json.loads(p.read_text()) for p in (results / "raw" / "tiny").glob("*/record.json")}
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    capsys.readouterr()

    args = ["verify", str(suite), "--results", str(results), "--quiet", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    found = rows(out)
    assert set(found) == {"ce", "kd"}
    for label, cells in found.items():
        record = next(r for r in published.values() if r["label"] == label)
        # the same machine and threads: the same numbers to the last digit
        assert cells[0] == record["key"] and cells[6:8] == [f"{record['best_top1']:.2f}"] * 2
        assert cells[8:] == ["+0.00", "+0.00", "same", "ok"]
    assert "2 of 2 re-runs within 2 points" in out
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}  # nothing of ours written

    kd_key = next(k for k, r in published.items() if r["label"] == "kd")
    path = results / "raw" / "tiny" / kd_key / "record.json"
    edited = {**published[kd_key], "best_top1": published[kd_key]["best_top1"] + 5.0}
    path.write_text(json.dumps(edited))
    assert main([*args, "--tolerance", "0", "--sample", "5", "--seed", "3"]) == 1
    out = capsys.readouterr().out
    kd = rows(out)["kd"]
    assert kd[6:] == [f"{edited['best_top1']:.2f}", f"{published[kd_key]['best_top1']:.2f}", "-5.00", "+0.00",
                      "same", "BEYOND", "0"]
    assert rows(out)["ce"][-1] == "ok" and "1 of 2 re-runs within 0 points" in out and "; 1 beyond" in out


def test_verify_does_not_rerun_an_edited_spec(tmp_path, capsys):
    run = make_spec("ce", "ce", None, "resnet8", 0, suite="tiny")
    RunStore(tmp_path / "results").write_record(run, make_record(run, 50.0, 50.0))
    path = RunStore(tmp_path / "results").record_path(run)
    data = json.loads(path.read_text())
    data["spec"]["seed"] = 1
    path.write_text(json.dumps(data))
    assert main(["verify", "tiny", "--results", str(tmp_path / "results"), "--quiet"]) == 1
    (row,) = rows(capsys.readouterr().out).values()
    line = " ".join(row)
    assert line.startswith(f"{run.key} ce - → resnet8 0 50.00 - - - - NOT COMPARED: its spec hashes to ")
    assert line.endswith(f", not to its key {run.key} (an edited spec; see kdbench check-results)")


@pytest.mark.parametrize(("args", "message"), [
    (["verify", "nothing", "--results", "nowhere"],
     "no published records of suite 'nothing' under nowhere/raw/nothing"),
    (["verify", "x", "--sample", "0"], "'--sample'"),
    (["verify", "x", "--tolerance", "-1"], "'--tolerance'"),
])
def test_verify_user_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kdbench: error: ") and message in err[0]


def test_a_run_in_contiguous_memory_is_recorded_so_and_verified_in_it(tmp_path, capsys):
    """``--memory-format contiguous`` (how CPU runs trained before channels_last) keeps the keys, says so in each
    record, and ``verify`` re-trains such a record contiguous again: equal to the last digit, the same set-up."""
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY).lstrip())
    runs, results = tmp_path / "runs", tmp_path / "results"
    base = ["run", str(suite), "--quiet", "--threads", "1", "--results", str(results)]
    assert main([*base, "--runs", str(runs), "--memory-format", "contiguous"]) == 0
    assert main([*base, "--runs", str(tmp_path / "nhwc")]) == 0
    contiguous = {p.parent.name: json.loads(p.read_text()) for p in (runs / "raw" / "tiny").glob("*/record.json")}
    nhwc = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "nhwc/raw/tiny").glob("*/record.json")}
    assert set(contiguous) == set(nhwc) and len(contiguous) == 2  # the same keys
    assert {r["environment"]["memory_format"] for r in contiguous.values()} == {"contiguous"}
    assert {r["environment"]["memory_format"] for r in nhwc.values()} == {"channels_last"}
    publish_suite(RunStore(runs), RunStore(results), "tiny")
    capsys.readouterr()
    assert main(["verify", str(suite), "--results", str(results), "--quiet", "--threads", "1", "--tolerance", "0"]) == 0
    found = rows(capsys.readouterr().out)
    assert {label: cells[8:] for label, cells in found.items()} == {
        label: ["+0.00", "+0.00", "same", "ok"] for label in ("ce", "kd")}


def test_an_unknown_memory_format_is_one_line_and_exit_2(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY).lstrip())
    assert main(["run", str(suite), "--memory-format", "nhwc", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--memory-format" in err[0] and not (tmp_path / "runs").exists()
