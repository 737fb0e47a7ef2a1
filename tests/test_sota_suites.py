"""The field's strongest baselines as suites: the CIFAR-100 suite plans on its published recipes, its digits twin
runs through the CLI with its table, and the published block shows the baselines' numbers by recipe."""

from __future__ import annotations

from pathlib import Path

import yaml

from kdbench.cli import main
from kdbench.plan import expand, load_suite
from kdbench.tables.recipes import recipe_name

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"ce", "kd", "KD+LS", "dkd", "DKD+LS", "CTKD+LS", "MLKD", "MLKD+LS", "DIST", "NKD", "ReviewKD", "SimKD",
          "KD+LR+DS", "MLKD+LS+LR+DS"}


def test_the_cifar_suite_plans_each_method_on_its_published_recipe(registry):
    plan = expand(load_suite(ROOT / "suites" / "cifar100_sota.yaml"), registry)
    assert {r.label for r in plan.runs} == LABELS and len({r.pair for r in plan.runs if r.teacher}) == 4
    named = {(r.label, r.student): recipe_name("cifar100", r.recipe.epochs, r.recipe.batch_size, r.recipe.lr,
                                                r.recipe.milestones, r.recipe.weight_decay) for r in plan.runs}
    assert named[("kd", "resnet8x4")] == named[("SimKD", "resnet8x4")] == "crd"
    assert named[("MLKD+LS", "resnet8x4")] == "mlkd" and named[("ReviewKD", "resnet8x4")] == "reviewkd"
    assert named[("ReviewKD", "MobileNetV2")] == "reviewkd" and named[("kd", "MobileNetV2")] == "crd"
    ls = {r.label: r.method.params for r in plan.runs if r.pair == "resnet32x4 → resnet8x4"}
    assert ls["KD+LS"]["T"] == 2.0 and ls["KD+LS"]["alpha"] == 9.0 and ls["DKD+LS"]["beta"] == 72.0
    mlkd_lr_ds = [r for r in plan.runs if r.label == "MLKD+LS+LR+DS"]
    assert all(r.revision and r.selection and r.method.params["logit_std"] for r in mlkd_lr_ds)


def test_the_imagenet_suite_carries_dist_and_nkd_on_their_recipe(registry, monkeypatch, tmp_path):
    suite = yaml.safe_load((ROOT / "suites" / "imagenet.yaml").read_text())
    entries = {e["label"]: e for e in suite["methods"] if isinstance(e, dict) and "label" in e}
    assert entries["DIST"]["params"] == {"beta": 1.0, "gamma": 1.0, "tau": 1.0}
    assert entries["NKD"]["params"] == {"T": 1.0, "gamma": 1.5}
    assert entries["DIST"]["recipe"] == entries["NKD"]["recipe"] == {"epochs": 100}
    assert recipe_name("imagenet", 100, 256, 0.1, (30, 60, 90), 1e-4) == "imagenet100"


def test_the_digits_twin_runs_through_the_cli_with_its_table(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = yaml.safe_load((ROOT / "suites" / "digits_sota.yaml").read_text())
    suite["dataset"]["params"]["image_size"] = 8
    suite["recipe"].update(epochs=1, milestones=[])
    suite["teacher_recipe"] = {"epochs": 1, "milestones": []}
    suite["seeds"] = [0]
    for entry in suite["methods"]:
        if isinstance(entry, dict) and "recipe" in entry:
            entry["recipe"] = {**entry["recipe"], "epochs": 1, "milestones": []}
    path = tmp_path / "digits_sota.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    runs = tmp_path / "runs"
    assert main(["run", str(path), "--dry-run", "--runs", str(runs)]) == 0
    assert main(["run", str(path), "--quiet", "--runs", str(runs), "--results", str(tmp_path / "none"),
                 "--threads", "2"]) == 0
    table = (runs / "digits_sota" / "table.md").read_text()
    for label in LABELS - {"ce"}:
        assert f"| {label} " in table, label
    assert "Student (scratch)" in table
