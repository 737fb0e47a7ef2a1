"""The paper-table suites' CPU twins, run through the CLI at reduced size: every table generator for real."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdbench.cli import main
from kdbench.suite import expand, load_suite

ROOT = Path(__file__).resolve().parent.parent
TWINS = {
    # suite: (runs at one seed, text that must appear in the rendered table)
    "digits_selection": (10, ["Baseline Acc", "Random", "Lowest", "Highest"]),
    "digits_ablation": (5, ["KD", "(MSE)", "✓", "×"]),
    "digits_lambda": (18, ["Baseline", "λ1", "λ2"]),
    "digits_eta": (9, ["Baseline", "ptmax", "pttar"]),
}


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One teacher store for all twins: they share the teacher and its influence scores."""
    return tmp_path_factory.mktemp("shared_home")


def reduced(name: str, tmp_path: Path) -> Path:
    suite = yaml.safe_load((ROOT / "suites" / f"{name}.yaml").read_text())
    suite["dataset"]["params"]["image_size"] = 8
    suite["recipe"].update(epochs=1, milestones=[])
    suite["teacher_recipe"] = {"epochs": 2, "milestones": []}
    suite["seeds"] = [0]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_runs_and_renders_its_paper_table(name, tmp_path, shared_home, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(shared_home))
    runs, markers = TWINS[name]
    assert main(["run", str(reduced(name, tmp_path)), "--quiet", "--results", str(tmp_path / "r")]) == 0
    table = (tmp_path / "r" / name / "table.md").read_text()
    for marker in markers:
        assert marker in table, marker
    assert f"derived from {runs} run records" in table or f"{runs} run records" in table
    import pandas as pd

    tidy = pd.read_csv(tmp_path / "r" / name / "table.csv")
    assert (tidy["n"] >= 1).all()  # every cell of the layout has a run behind it
    # the table regenerates identically from the records alone
    (tmp_path / "r" / name / "table.md").unlink()
    assert main(["tables", str(tmp_path / "r" / "raw" / name)]) == 0
    assert (tmp_path / "r" / name / "table.md").read_text() == table


@pytest.mark.parametrize("name", ["selection", "ablation", "lambda", "eta"])
def test_cifar_suites_mirror_their_twins(name, registry):
    cifar = expand(load_suite(ROOT / "suites" / f"cifar100_{name}.yaml"), registry)
    twin = expand(load_suite(ROOT / "suites" / f"digits_{name}.yaml"), registry)
    assert [r.label for r in cifar.runs] == [r.label for r in twin.runs]
    assert {r.pair for r in cifar.runs} == {"resnet32x4 → resnet8x4"}
    assert all(r.recipe["epochs"] == 240 for r in cifar.runs)
    assert len(cifar.runs) == 3 * TWINS[f"digits_{name}"][0]
