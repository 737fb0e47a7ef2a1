"""The paper-table suites' CPU twins, run through the CLI at reduced size: every table generator for real."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdbench.cli import main
from kdbench.plan import expand, load_suite
from kdbench.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
TWINS = {
    # suite: (runs at one seed, text that must appear in the rendered table)
    "digits_selection": (10, ["Baseline Acc", "Random", "Lowest", "Highest"]),
    "digits_ablation": (9, ["KD", "PKT", "(MSE)", "✓", "×"]),
    "digits_lambda": (18, ["Baseline", "λ1", "λ2"]),
    "digits_eta": (9, ["Baseline", "ptmax", "pttar"]),
    "digits_vanilla": (8 + 4, ["Teacher", "Student", "Vanilla KD", "Our", "Δ"]),
    "digits_similar": (2 * 18, ["Logits", "Features", "OA", "LDA", "Δ", "SemCKD", "DKD"]),
    "digits_different": (18, ["Logits", "Features", "OA", "LDA", "Δ", "ShuffleV2"]),
}
# MobileNetV2 and ShuffleNet downsample 16×: they need at least 16 px
IMAGE_SIZE = {"digits_vanilla": 16, "digits_different": 16}
FIRST_PAIR_ONLY = {"digits_different"}  # keeps the test suite fast; the second pair has the same methods


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One teacher store for all twins: they share the teacher and its influence scores."""
    return tmp_path_factory.mktemp("shared_home")


def reduced(name: str, tmp_path: Path) -> Path:
    """The shipped twin with its methods, pairs and table layout as they are, at reduced size: one epoch,
    one seed, and a generated CIFAR-shaped set of 256 training images in place of digits' 1437."""
    suite = yaml.safe_load((ROOT / "suites" / f"{name}.yaml").read_text())
    assert suite["dataset"]["name"] == "digits"
    suite["dataset"] = {"name": "synthetic", "params": {"num_train": 256, "num_test": 128, "num_classes": 10,
                                                        "image_size": IMAGE_SIZE.get(name, 8)}}
    suite["recipe"].update(epochs=1, milestones=[])
    suite["teacher_recipe"] = {"epochs": 2, "milestones": []}
    suite["seeds"] = [0]
    if name in FIRST_PAIR_ONLY:
        suite["pairs"] = suite["pairs"][:1]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twin_runs_and_renders_its_paper_table(name, tmp_path, shared_home, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(shared_home))
    runs, markers = TWINS[name]
    assert main(["run", str(reduced(name, tmp_path)), "--quiet", "--runs", str(tmp_path / "r")]) == 0
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


@pytest.mark.parametrize("name", ["selection", "ablation", "lambda", "eta", "vanilla", "similar", "different"])
def test_cifar_suites_mirror_their_twins(name, registry):
    cifar = expand(load_suite(ROOT / "suites" / f"cifar100_{name}.yaml"), registry)
    twin = expand(load_suite(ROOT / "suites" / f"digits_{name}.yaml"), registry)
    assert [r.label for r in cifar.runs if r.pair == cifar.runs[0].pair] == [
        r.label for r in twin.runs if r.pair == twin.runs[0].pair
    ]
    assert all(r.recipe.epochs == 240 for r in cifar.runs)
    if name in ("selection", "ablation", "lambda", "eta"):
        assert {r.pair for r in cifar.runs} == {"resnet32x4 → resnet8x4"}
        assert len(cifar.runs) == 3 * TWINS[f"digits_{name}"][0]


def test_similar_dry_run_lists_the_table_v_cross_product(capsys):
    """5 pairs × 9 methods × 2 variants (OA, LDA) × 3 seeds."""
    # without CIFAR under the data root the dry run lists the plan, then says what the run would stop with
    assert main(["run", str(ROOT / "suites" / "cifar100_similar.yaml"), "--dry-run"]) == 2
    printed = capsys.readouterr()
    assert "270 runs, 0 already finished" in printed.out and "cifar100: no data under" in printed.err
    plan = expand(load_suite(ROOT / "suites" / "cifar100_similar.yaml"), load_registry())
    assert len({r.method.name for r in plan.runs}) == 9 and len({r.pair for r in plan.runs}) == 5
    lda = [r for r in plan.runs if r.selection or r.revision]
    assert len(lda) == 135
    # §7: logit methods get DS only, feature methods LR + DS
    assert all(r.revision is None for r in lda if r.method.name in ("kd", "dkd", "ctkd", "dtd_la"))
    assert all(r.revision and r.selection for r in lda if r.method.name not in ("kd", "dkd", "ctkd", "dtd_la"))
    dkd = {r.pair: r.method.params["beta"] for r in plan.runs if r.method.name == "dkd"}
    assert dkd["resnet56 → resnet20"] == 2 and dkd["vgg13 → vgg8"] == 6 and dkd["resnet32x4 → resnet8x4"] == 8
