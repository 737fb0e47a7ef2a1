"""``kdbench run --dry-run`` checks that the suite's data is there: each dataset's own ``missing_data`` check looks
for files and reads none, and says what the run would stop with, or which command writes a missing export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.registry import load_registry


def suite(tmp_path: Path, dataset: str) -> str:
    path = tmp_path / "data.yaml"
    path.write_text(f"dataset: {dataset}\npairs: [{{student: resnet8}}]\nmethods: [ce]\n")
    return str(path)


def one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_dry_run_without_cifar_says_what_the_run_would_say(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KdbenchError) as loading:  # what the loader itself stops with
        load_registry().get("dataset", "cifar100").create({}, root=Path("nowhere"), download=False)
    args = ["run", suite(tmp_path, "cifar100"), "--data-root", "nowhere", "--runs", "runs", "--quiet"]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 2
    dry = one_error_line(capsys)
    assert dry == f"kdbench: error: {loading.value}" and "pass --download" in dry
    assert main(args) == 2 and one_error_line(capsys) == dry  # the real run stops with the same line
    assert main([*args, "--dry-run", "--download"]) == 0  # it would download it


def test_a_dry_run_on_a_missing_export_folder_names_the_command_that_writes_it(tmp_path, capsys):
    data = tmp_path / "data"
    args = ["run", suite(tmp_path, "{name: imagefolder, params: {path: digits_folder, image_size: 16}}"),
            "--data-root", str(data), "--runs", str(tmp_path / "runs"), "--dry-run"]
    capsys.readouterr()
    assert main(args) == 2
    line = one_error_line(capsys)
    assert f"{data / 'digits_folder' / 'train'} does not exist" in line
    command = re.search(r"`kdbench (export-folder [^`]+)` writes it$", line)
    assert command is not None and command.group(1) == f"export-folder digits --data-root {data}"
    assert main(command.group(1).split()) == 0  # the command it names makes the dry run pass
    assert main(args) == 0


def test_a_dataset_plugin_may_carry_a_check_and_the_registry_hands_it_its_parameters():
    from kdbench.contracts import checks_data
    from kdbench.registry import Registry

    def check(*, root, download=False, size: int = 4, **_) -> str | None:
        return None if download else f"mine: no data of size {size} under {root}"

    @checks_data(check)
    def mine(*, root=None, download=False, size: int = 4):
        raise AssertionError("a check loads nothing")

    reg = Registry()
    reg.register("dataset", "mine", mine)
    reg.register("dataset", "plain", lambda *, root=None, download=False: None)
    comp = reg.get("dataset", "mine")
    assert comp.missing_data({"size": 8}, root="r", download=False) == "mine: no data of size 8 under r"
    assert comp.missing_data({}, root="r", download=True) is None
    assert reg.get("dataset", "plain").missing_data({}, root="r", download=False) is None  # no check: nothing to say

    mine.missing_data = "not a function"
    with pytest.raises(KdbenchError, match="whose missing_data is not callable"):
        reg.register("dataset", "mine2", mine)



def test_the_exports_an_image_folder_names_are_built_in_datasets_held_in_memory():
    """The image-folder datasets suggest `export-folder` only for these names: each is a built-in dataset, and
    not one of the streamed ones."""
    from kdbench_plugins.datasets._common import IN_MEMORY_DATASETS

    registry = load_registry()
    modules = {registry.get("dataset", name).factory.__module__ for name in IN_MEMORY_DATASETS}
    assert modules == {f"kdbench_plugins.datasets.{m}" for m in ("digits", "synthetic", "cifar")}
