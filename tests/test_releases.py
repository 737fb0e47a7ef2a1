"""Releases: the manifest names every published record file with its sha256, is never overwritten, and a check
says per file what changed since (and writes nothing)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.store import RunStore, published_records
from kdbench.store.published_files import one_per_run, published_files
from kdbench.store.release_check import check_release
from kdbench.store.releases import make_release, read_release, release_path, write_release
from tests.records import ENVIRONMENT, make_record, make_spec

WHEN = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)


def fill(store: RunStore) -> dict:
    """ce and kd, seeds 0 and 1, suite s: the specs by (label, seed)."""
    specs = {}
    for seed in (0, 1):
        for label, teacher in (("ce", None), ("kd", "resnet20")):
            spec = make_spec(label, label, teacher, "resnet8", seed, suite="s", order=(0, int(teacher is not None)))
            teacher_top1 = 95.0 if teacher else None
            store.write_record(spec, make_record(spec, 90.0 + seed, 89.0 + seed, teacher_top1=teacher_top1))
            specs[label, seed] = spec
    return specs


def release_of(store: RunStore, name: str = "v1", revision: str | None = "abc123"):
    return make_release(name, published_files(store), code_revision=revision, kdbench_version="0.1.0", metric="best",
                        created=WHEN)


def snapshot(root) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_manifest_names_every_file_with_its_sha256(tmp_path):
    store = RunStore(tmp_path / "results")
    specs = fill(store)
    path = write_release(store.root, release_of(store))
    assert path == tmp_path / "results" / "releases" / "v1.json"
    data = json.loads(path.read_text())
    assert (data["name"], data["created"], data["code_revision"], data["kdbench_version"], data["metric"]) == (
        "v1", "2026-12-05T09:30:00Z", "abc123", "0.1.0", "best")
    assert len(data["records"]) == 4
    for spec in specs.values():
        file = store.record_path(spec)
        entry = next(r for r in data["records"] if r["key"] == spec.key)
        assert entry["path"] == f"raw/s/{spec.key}/record.json"
        assert entry["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert read_release(store.root, "v1") == release_of(store)
    assert len(path.read_text().splitlines()) == 8 + 4 + 2  # a line per record, between the header and the end


def test_the_tree_is_read_once_for_every_consumer(tmp_path):
    store = RunStore(tmp_path / "results")
    specs = fill(store)
    files = published_files(store)
    assert sorted(f.path for f in files) == sorted(f"raw/s/{spec.key}/record.json" for spec in specs.values())
    assert sorted(r.key for r in one_per_run(files)) == sorted(spec.key for spec in specs.values())
    assert published_records(store) == one_per_run(files)


def test_a_release_is_never_overwritten(tmp_path):
    store = RunStore(tmp_path / "results")
    fill(store)
    path = write_release(store.root, release_of(store))
    before = path.read_bytes()
    with pytest.raises(KdbenchError, match=r"release 'v1' exists already .* never overwritten"):
        write_release(store.root, release_of(store, revision="other"))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["v1.json"]  # no temporary file left behind


@pytest.mark.parametrize("name", ["v1", "2026-12_rc.1", "A-b_c"])
def test_plain_names_are_release_names(tmp_path, name):
    assert release_path(tmp_path, name) == tmp_path / "releases" / f"{name}.json"


@pytest.mark.parametrize("name", ["", ".hidden", "..", "../v1", "a/b", "v 1", "v1\n", "é"])
def test_other_names_are_one_line(tmp_path, name):
    with pytest.raises(KdbenchError, match="use letters, digits, '.', '_' and '-'"):
        release_path(tmp_path, name)


def test_check_says_what_changed_per_file(tmp_path):
    store = RunStore(tmp_path / "results")
    specs = fill(store)
    release = release_of(store)
    unchanged = check_release(store.root, release, published_files(store), "abc123")
    assert unchanged.differences == []
    assert unchanged.summary == "the published records match release v1 (2026-12-05 09:30 UTC): 4 record files"
    kd0, kd1, ce0, ce1 = specs["kd", 0], specs["kd", 1], specs["ce", 0], specs["ce", 1]
    store.write_record(kd0, make_record(kd0, 90.25, 89.0, teacher_top1=95.0))  # best_top1 90 → 90.25
    moved = make_record(kd1, 91.0, 90.0, teacher_top1=95.0)
    elsewhere = ENVIRONMENT.model_copy(update={"torch": "2"})
    store.write_record(kd1, moved.model_copy(update={"environment": elsewhere}))  # not a headline field
    store.record_path(ce0).unlink()
    store.record_path(ce1).write_text("{ not json")
    new = make_spec("kd", "kd", "resnet20", "resnet8", 2, suite="s")
    store.write_record(new, make_record(new, 93.5, 92.0))
    with pytest.warns(UserWarning, match="not readable as JSON"):
        files = published_files(store)
    check = check_release(store.root, release, files, "def456")
    sha = {r.path: r.sha256 for r in release.records}
    now = hashlib.sha256(store.record_path(kd1).read_bytes()).hexdigest()
    path = lambda spec: f"raw/s/{spec.key}/record.json"  # noqa: E731
    assert sorted(d.line for d in check.differences) == sorted([
        f"changed {path(kd0)}: kd, resnet20 → resnet8, seed 0: best_top1 90.00 → 90.25",
        f"changed {path(kd1)}: kd, resnet20 → resnet8, seed 1: the file differs (sha256 {sha[path(kd1)][:12]}… → "
        f"{now[:12]}…); its headline fields are equal",
        f"removed {path(ce0)}: ce, - → resnet8, seed 0: best_top1 90.00, last_top1 89.00",
        f"changed {path(ce1)}: ce, - → resnet8, seed 1: no longer a valid record",
        f"added {path(new)}: kd, resnet20 → resnet8, seed 2: best_top1 93.50, last_top1 92.00",
    ])
    assert check.summary == ("5 record file(s) differ from release v1 (2026-12-05 09:30 UTC): 1 added, 1 removed, "
                             "3 changed; code revision abc123 then, def456 now (not a difference: each record names "
                             "the code that trained it)")


def test_a_small_change_shows_with_the_decimals_that_tell_it(tmp_path):
    store = RunStore(tmp_path / "results")
    specs = fill(store)
    release = release_of(store)
    kd0 = specs["kd", 0]
    store.write_record(kd0, make_record(kd0, 90.00001, 89.0, teacher_top1=95.0, wall_time_s=2.5))
    (difference,) = check_release(store.root, release, published_files(store), "abc123").differences
    assert difference.detail.endswith("best_top1 90.000000 → 90.000010, wall_time_s 1.00 → 2.50")


def test_unknown_or_broken_release_is_one_line(tmp_path):
    store = RunStore(tmp_path / "results")
    fill(store)
    with pytest.raises(KdbenchError, match=r"no release 'v9' under .*releases \(there is none yet; make one with"):
        read_release(store.root, "v9")
    write_release(store.root, release_of(store))
    with pytest.raises(KdbenchError, match=r"no release 'v9' under .*\(releases there: v1\)"):
        read_release(store.root, "v9")
    (store.root / "releases" / "bad.json").write_text('{"name": "bad"}')
    with pytest.raises(KdbenchError, match=r"bad.json: not a release manifest \(created: Field required\)"):
        read_release(store.root, "bad")


# The command: one test per option.

def test_leaderboard_release_writes_a_manifest_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    specs = fill(RunStore(tmp_path / "results"))
    assert main(["leaderboard", "--release", "v1"]) == 0
    out = capsys.readouterr().out
    manifest = tmp_path / "results" / "releases" / "v1.json"
    data = json.loads(manifest.read_text())
    assert sorted(r["key"] for r in data["records"]) == sorted(s.key for s in specs.values())
    assert "release v1: 4 record files" in out and "results/releases/v1.json" in out
    assert (tmp_path / "results" / "runs.parquet").is_file() and (tmp_path / "results" / "leaderboard").is_dir()
    created = data["created"][:10]  # the page shows the release and its date
    assert f"Release v1 · built {created}" in (tmp_path / "results" / "leaderboard" / "index.html").read_text()
    before = snapshot(tmp_path / "results")
    assert main(["leaderboard", "--release", "v1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "release 'v1' exists already" in err[0]
    assert snapshot(tmp_path / "results") == before  # refused before anything was written
    assert main(["leaderboard", "--release", "../v2"]) == 2
    assert "use letters, digits" in capsys.readouterr().err


def test_leaderboard_check_writes_nothing_and_exits_1_on_a_change(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = RunStore(tmp_path / "results")
    specs = fill(store)
    assert main(["leaderboard", "--release", "v1"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path / "results")
    assert main(["leaderboard", "--check", "v1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("the published records match release v1 (")
    assert snapshot(tmp_path / "results") == before
    kd0 = specs["kd", 0]
    store.write_record(kd0, make_record(kd0, 91.5, 89.0, teacher_top1=95.0))
    before = snapshot(tmp_path / "results")
    assert main(["leaderboard", "--check", "v1"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"changed raw/s/{kd0.key}/record.json: kd, resnet20 → resnet8, seed 0: best_top1 90.00 → 91.50"
    assert len(lines) == 2 and lines[1].startswith("1 record file(s) differ from release v1")
    assert snapshot(tmp_path / "results") == before
    assert main(["leaderboard", "--check", "v2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no release 'v2'" in err[0] and "releases there: v1" in err[0]


def test_no_committed_record_changed_or_vanished_since_the_last_release(capsys):
    """The repository's own results against its newest release: records published since are fine (a release
    comes with a later publish), but a record edited or removed after release is caught."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    releases = sorted((results / "releases").glob("*.json"))
    assert releases, "results/releases/ holds the committed releases"
    latest = max(releases, key=lambda p: read_release(results, p.stem).created)
    main(["leaderboard", "--check", latest.stem, "--results", str(results)])
    lines = capsys.readouterr().out.splitlines()
    assert lines and not [line for line in lines if line.startswith(("changed ", "removed "))]
