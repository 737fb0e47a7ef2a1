"""Files kdbench writes follow the user's umask: 0644 under umask 022, so a web server or a colleague can read a
published table or record; 0600 under umask 077. Atomic writes must not keep mkstemp's 0600."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
import torch

from kdbench.cli import main
from kdbench.contracts import temporary_beside
from kdbench.store import RunStore, TeacherOutputStore
from kdbench.store.files import atomic_torch_save, atomic_write_bytes, atomic_write_json
from kdbench_plugins.datasets.cifar import _download
from tests.test_publish import fill

UMASKS = {0o022: 0o644, 0o077: 0o600}


@pytest.fixture(params=sorted(UMASKS), ids=lambda m: f"umask{m:03o}")
def expected_mode(request) -> int:
    """Runs the test under the umask, restored after it; the mode every written file must have."""
    old = os.umask(request.param)
    try:
        yield UMASKS[request.param]
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def written_files(root: Path) -> list[Path]:
    """Every file below ``root`` but file locks (filelock's own files, not outputs)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_atomic_writes_follow_the_umask(tmp_path, expected_mode):
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_json(tmp_path / "sub" / "b.json", {"a": 1})
    atomic_torch_save({"t": torch.zeros(2)}, tmp_path / "c.pt")
    atomic_write_bytes(tmp_path / "a.bin", b"replaced")  # a replacement too
    files = written_files(tmp_path)
    assert [p.name for p in files] == ["a.bin", "c.pt", "b.json"]  # no temporary file left
    assert {p.name: mode(p) for p in files} == {p.name: expected_mode for p in files}


def test_a_teacher_output_table_follows_the_umask(tmp_path, expected_mode):
    store = TeacherOutputStore(tmp_path)
    writer = store.writer("k", (1, 2, 3), "float32")
    writer.write(0, torch.ones(2, 3))
    writer.commit({"teacher": "t"})
    bin_path, meta_path = store.paths("k")
    assert written_files(tmp_path) == sorted([bin_path, meta_path])
    assert (mode(bin_path), mode(meta_path)) == (expected_mode, expected_mode)


def test_a_downloaded_archive_follows_the_umask(tmp_path, expected_mode):
    source = tmp_path / "archive.tar.gz"
    source.write_bytes(b"not really an archive")
    dest = tmp_path / "data" / "cifar-10-python.tar.gz"
    _download(source.as_uri(), hashlib.md5(source.read_bytes()).hexdigest(), dest, "cifar10")
    assert [p.name for p in (tmp_path / "data").iterdir()] == [dest.name]
    assert mode(dest) == expected_mode


def test_publish_and_leaderboard_outputs_follow_the_umask(tmp_path, monkeypatch, expected_mode):
    monkeypatch.chdir(tmp_path)
    fill(RunStore(tmp_path / "runs"))
    results = tmp_path / "results"
    assert main(["publish", "s", "--runs", "runs"]) == 0
    published = written_files(results)
    names = {p.relative_to(results).as_posix() for p in published}
    assert {"s/table.md", "s/table.csv", "leaderboard/index.html", "raw/s/suite.json"} <= names
    assert sum(p.name == "record.json" for p in published) == 4
    assert {str(p): mode(p) for p in published} == {str(p): expected_mode for p in published}
    shutil.rmtree(results / "leaderboard")
    assert main(["leaderboard"]) == 0
    board = written_files(results / "leaderboard")
    assert len(board) >= 3
    assert {str(p): mode(p) for p in board} == {str(p): expected_mode for p in board}


def test_temporary_files_get_distinct_names_beside_their_target(tmp_path):
    target = tmp_path / "t.json"
    names = []

    def make():
        for _ in range(50):
            fd, path = temporary_beside(target, suffix=".part")
            os.close(fd)
            names.append(path)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 200 and all(p.parent == tmp_path and p.name.startswith(".t.json.") for p in names)
    assert all(p.name.endswith(".part") for p in names)
