"""Data Selection with ``mode: drop`` (removal curves, docs/methods.md §12a): the selected samples are removed from
training, the keys of every other selection stay as they were, and the removal layout draws the curves."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
import torch

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.plan import expand, load_suite
from kdbench.plan.spec import ComponentRef, SelectionSpec
from kdbench.run import RunOptions, Worker
from kdbench.tables.removal import curve_of, curve_order, without_removal
from kdbench.train.selection import training_subset
from kdbench_plugins.datasets.synthetic import make_synthetic

SUITE = """
    name: removal
    dataset: {name: synthetic, params: {num_train: 80, num_test: 40, image_size: 8, num_classes: 4}}
    label_noise: {rate: 0.2, kind: symmetric, seed: 0}
    recipe: {epochs: 1, batch_size: 32, lr: 0.05, milestones: []}
    teacher_recipe: {epochs: 2, milestones: []}
    seeds: [0]
    pairs: [{teacher: resnet20, student: resnet8}]
    methods:
      - {name: kd, label: KD}
      - {name: kd, label: loss 25, selection: {estimator: loss, fraction: 0.25, mode: drop}}
      - {name: kd, label: loss 50, selection: {estimator: loss, fraction: 0.5, mode: drop}}
      - {name: kd, label: margin 25, selection: {estimator: margin, fraction: 0.25, mode: drop}}
      - {name: kd, label: loss low 25, selection: {estimator: loss, fraction: 0.25, order: lowest, mode: drop}}
      - {name: kd, label: random 25, selection: {fraction: 0.25, order: random, mode: drop}}
      - {name: kd, label: random 50, selection: {fraction: 0.5, order: random, mode: drop}}
      - {name: kd, label: DS, selection: {estimator: loss, fraction: 0.5}}
"""


def test_the_teacher_mode_keeps_every_key_and_drop_is_part_of_its_own():
    loss = ComponentRef("loss", {}, "1")
    teacher = SelectionSpec(fraction=0.5, order="highest", estimator=loss)
    assert "mode" not in teacher.identity()  # every key written before the mode existed is unchanged
    drop = SelectionSpec(fraction=0.5, order="highest", estimator=loss, mode="drop")
    assert drop.identity() == {**teacher.identity(), "mode": "drop"}
    assert SelectionSpec.from_identity(drop.identity()) == drop
    assert SelectionSpec.from_identity(teacher.identity()) == teacher
    random = SelectionSpec(fraction=0.5, order="random", seed=3, mode="drop")
    assert SelectionSpec.from_identity(random.identity()) == random


def test_drop_removes_the_estimators_suspect_end_by_default(write_suite, registry):
    plan = expand(load_suite(write_suite(SUITE)), registry)
    by_label = {r.label: r.selection for r in plan.runs}
    assert by_label["loss 25"].order == "highest" and by_label["loss 25"].mode == "drop"  # a high loss is suspect
    assert by_label["margin 25"].order == "lowest"  # a small margin is suspect
    assert by_label["DS"].mode == "teacher" and by_label["KD"] is None
    assert len({r.key for r in plan.runs}) == len(plan.runs)


@pytest.mark.parametrize(("selection", "message"), [
    ("{estimator: loss, fraction: 1.0, mode: drop}", "fraction must be below 1"),
    ("{estimator: loss, fraction: 0.5, mode: remove}", "mode"),
])
def test_a_bad_drop_selection_is_one_line_and_exit_2(write_suite, capsys, selection, message):
    text = textwrap.dedent(SUITE).replace("{estimator: loss, fraction: 0.25, mode: drop}", selection, 1)
    assert main(["run", str(write_suite(text)), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kdbench: error: ") and message in err[0]


def test_a_training_subset_keeps_the_marked_samples_in_order():
    data = make_synthetic(num_train=10, num_test=4, num_classes=2, image_size=4)
    data = data.__class__(**{**data.__dict__, "train_flipped": torch.arange(10) % 3 == 0})
    keep = torch.tensor([True, False, True, True, False, False, True, False, True, True])
    subset = training_subset(data, keep)
    kept = [0, 2, 3, 6, 8, 9]
    assert subset.num_train == 6 and torch.equal(subset.train_images, data.train_images[kept])
    assert torch.equal(subset.train_labels, data.train_labels[kept])
    assert subset.train_flipped is not None and subset.train_flipped.tolist() == [True, False, True, True, False, True]
    assert torch.equal(subset.test_images, data.test_images) and torch.equal(subset.val_images, data.val_images)
    with pytest.raises(ValueError, match="bool mask"):
        training_subset(data, keep[:5])


def test_drop_needs_data_held_in_memory():
    class Streamed:
        name = "imagefolder"

    with pytest.raises(KdbenchError, match="held in memory; imagefolder is streamed"):
        training_subset(Streamed(), torch.ones(3, dtype=torch.bool))  # type: ignore[arg-type]


def test_drop_runs_train_without_the_removed_samples_and_make_removal_curves(write_suite, tmp_path, capsys):
    suite = write_suite(SUITE)
    runs = tmp_path / "runs"
    assert main(["run", str(suite), "--quiet", "--runs", str(runs)]) == 0
    records = {json.loads(p.read_text())["label"]: json.loads(p.read_text())
               for p in (runs / "raw" / "removal").glob("*/record.json")}
    assert len(records) == 8
    num_train = 80 - round(80 * 0.0)  # no validation split
    for label, removed in (("loss 25", 20), ("loss 50", 40), ("random 25", 20), ("margin 25", 20)):
        selection = records[label]["selection"]
        assert (selection["removed_samples"], selection["samples"]) == (removed, num_train), label
    assert records["DS"]["selection"].get("removed_samples") is None and records["KD"]["selection"] is None

    # the run's data: all but the removed samples, which are the highest losses (worked out from the scores)
    plan = expand(load_suite(suite), Worker(RunOptions(runs_root=str(runs), device="cpu")).components.registry)
    spec = next(r for r in plan.runs if r.label == "loss 25")
    worker = Worker(RunOptions(runs_root=str(runs), device="cpu", quiet=True))
    needs, supervision, _ = worker._supervised(spec)
    full = worker.components.dataset(spec.dataset)
    assert spec.teacher is not None and spec.selection is not None and spec.selection.estimator is not None
    scores = worker.scorer.scores(spec.teacher, spec.selection.estimator).values
    removed = set(torch.argsort(scores, descending=True, stable=True)[:20].tolist())
    kept = [i for i in range(num_train) if i not in removed]
    assert needs.data.num_train == 60 and torch.equal(needs.data.train_images, full.train_images[kept])
    assert supervision.distill_mask is None  # everything kept is trained on as the method trains

    table = (runs / "removal" / "table.md").read_text()
    assert "Removal curves" in table and "| Curve" in table and "| random" in table
    assert "loss (highest removed)" in table and "loss (lowest removed)" in table and "margin (lowest removed)" in table
    tidy = pd.read_csv(runs / "removal" / "table.csv")
    kd = records["KD"]["best_top1"]
    assert set(tidy["pct"]) == {0.0, 25.0, 50.0} and (tidy[tidy["pct"] == 0.0]["mean"] == kd).all()
    assert tidy.loc[(tidy["curve"] == "loss (highest removed)") & (tidy["pct"] == 50.0), "mean"].item() == \
        records["loss 50"]["best_top1"]
    assert list(dict.fromkeys(tidy["curve"]))[-1] == "random"  # the floor, last
    assert (runs / "removal" / "removal_resnet20_resnet8.png").stat().st_size > 1000
    capsys.readouterr()
    # another layout over the same records leaves the drop runs out: they are neither DS runs nor baselines
    assert main(["tables", str(runs / "raw" / "removal"), "--layout", "selection"]) == 0
    assert "derived from 2 run records" in capsys.readouterr().out  # KD and DS


def test_curves_are_named_by_estimator_and_end_with_random_last():
    rows = pd.DataFrame({"ds_order": ["highest", "lowest", "random"], "ds_estimator": ["loss", "loss", None],
                         "ds_mode": ["drop"] * 3})
    names = [curve_of(r) for _, r in rows.iterrows()]
    assert names == ["loss (highest removed)", "loss (lowest removed)", "random"]
    assert curve_order({"random", "b", "a"}) == ["a", "b", "random"]
    frame = pd.DataFrame({"ds_mode": ["drop", "teacher", None]})
    assert list(without_removal(frame)["ds_mode"].fillna("-")) == ["teacher", "-"]


@pytest.mark.parametrize("name", ["digits_removal", "cifar100_removal"])
def test_the_shipped_removal_suites_cross_five_curves_with_four_shares(name, registry):
    from pathlib import Path

    plan = expand(load_suite(Path(__file__).resolve().parents[1] / "suites" / f"{name}.yaml"), registry)
    assert len(plan.runs) == 3 * (1 + 4 * 6)  # KD, then 4 shares × (5 estimators' curves + influence's low end)
    drops = [r.selection for r in plan.runs if r.selection is not None]
    assert {s.mode for s in drops} == {"drop"} and {s.fraction for s in drops} == {0.05, 0.1, 0.2, 0.4}
    curves = {(s.estimator.name if s.estimator else "random", s.order) for s in drops}
    assert curves == {("influence", "highest"), ("influence", "lowest"), ("kronfluence", "highest"),
                      ("trak", "highest"), ("loss", "highest"), ("random", "random")}
    assert all(r.dataset.noisy and r.dataset.label_noise.rate == 0.2 for r in plan.runs)


def test_a_removal_run_is_labelled_removal_not_data_selection():
    """Removing samples is not Data Selection: an unlabelled drop entry, and a drop run on the leaderboard, read
    ``+removal``, so the leaderboard's +DS filter does not count them."""
    from kdbench.contracts.names import default_label
    from kdbench.plan.suite_file import MethodEntry

    assert [default_label("kd", lr, mode) for lr, mode in ((False, None), (True, "teacher"), (False, "drop"),
                                                           (True, "drop"))] == [
        "kd", "kd+LR+DS", "kd+removal", "kd+LR+removal"]
    drop = MethodEntry(name="kd", selection={"fraction": 0.1, "order": "random", "mode": "drop"})
    assert drop.display() == "kd+removal"
    assert MethodEntry(name="kd", selection="influence", revision=True).display() == "kd+LR+DS"
