"""Label noise (docs/methods.md §12): the flips themselves against hand-checked properties, CIFAR-100's
superclasses from its files, noise in keys and records, detection figures against a hand example and
scikit-learn, `kdbench score`'s detection table, and the three "beyond the paper" twins through the CLI."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.plan import DatasetRef, LabelNoise, expand, load_suite
from kdbench.registry import load_registry
from kdbench.train.label_noise import (
    auroc,
    detect_flipped,
    flip_labels,
    found_by_inspecting,
    precision_at_k,
    with_label_noise,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.37, 0.9])
def test_symmetric_noise_flips_exactly_the_rate_and_never_to_the_same_label(rate):
    labels = torch.arange(1000) % 10
    noisy, flipped = flip_labels(labels, 10, rate, "symmetric", seed=3)
    assert int(flipped.sum()) == round(rate * 1000)
    assert torch.equal(noisy != labels, flipped)  # every flip changes the label, nothing else changes
    again, _ = flip_labels(labels, 10, rate, "symmetric", seed=3)
    assert torch.equal(noisy, again)
    if rate:
        other, _ = flip_labels(labels, 10, rate, "symmetric", seed=4)
        assert not torch.equal(noisy, other)


def test_symmetric_noise_reaches_every_other_class():
    labels = torch.zeros(4000, dtype=torch.long)
    noisy, flipped = flip_labels(labels, 5, 0.5, "symmetric", seed=0)
    counts = torch.bincount(noisy[flipped], minlength=5)
    assert counts[0] == 0 and all(400 < int(c) < 600 for c in counts[1:])  # ~500 each of 2000 flips


def test_pairflip_moves_a_class_to_the_next():
    labels = torch.tensor([0, 1, 2, 9, 9, 3])
    noisy, flipped = flip_labels(labels, 10, 0.5, "pairflip", seed=1)
    assert torch.equal(noisy[flipped], (labels[flipped] + 1) % 10) and int(flipped.sum()) == 3


def test_superclass_noise_stays_in_the_superclass():
    superclasses = tuple(c // 5 for c in range(20))  # 4 superclasses of 5 classes
    labels = torch.arange(2000) % 20
    noisy, flipped = flip_labels(labels, 20, 0.4, "superclass", seed=0, superclasses=superclasses)
    assert int(flipped.sum()) == 800 and torch.equal(noisy != labels, flipped)
    assert torch.equal(noisy // 5, labels // 5)


@pytest.mark.parametrize(
    ("rate", "kind", "superclasses", "message"),
    [
        (1.0, "symmetric", None, "rate must be in"),
        (-0.1, "symmetric", None, "rate must be in"),
        (0.2, "superclass", None, "needs a dataset that knows its superclasses"),
        (0.2, "uniform", None, "unknown kind 'uniform'"),
    ],
)
def test_impossible_noise_is_one_line(rate, kind, superclasses, message):
    with pytest.raises(KdbenchError, match=message) as err:
        flip_labels(torch.arange(10), 10, rate, kind, 0, superclasses)
    assert "\n" not in str(err.value)


def test_noise_touches_training_and_validation_labels_but_never_the_test_split():
    data = load_registry().get("dataset", "synthetic").create({"num_train": 200, "num_test": 50,
                                                               "val_fraction": 0.2}, root=None, download=False)
    noisy = with_label_noise(data, 0.25, "symmetric", 0)
    assert int(noisy.train_flipped.sum()) == 40 and int(noisy.val_flipped.sum()) == 10
    assert torch.equal(noisy.test_labels, data.test_labels) and torch.equal(noisy.test_images, data.test_images)
    assert torch.equal(noisy.train_labels != data.train_labels, noisy.train_flipped)


def test_cifar100_superclasses_are_read_from_the_files(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine = [i % 100 for i in range(200)]
    for name, n in (("train", 200), ("test", 20)):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": fine[:n],
                         b"coarse_labels": [c // 5 for c in fine[:n]]}, f)
    data = load_registry().get("dataset", "cifar100").create({"md5": "0" * 32}, root=tmp_path, download=False)
    assert data.superclasses == tuple(c // 5 for c in range(100))
    noisy = with_label_noise(data, 0.5, "superclass", 0)
    assert torch.equal(noisy.train_labels // 5, data.train_labels // 5) and int(noisy.train_flipped.sum()) == 100


def test_noise_is_part_of_the_key_and_rate_zero_is_the_clean_dataset():
    clean = DatasetRef("digits", {"image_size": 16})
    assert DatasetRef("digits", {"image_size": 16}, label_noise=LabelNoise(0.0)).identity() == clean.identity()
    noisy = DatasetRef("digits", {"image_size": 16}, label_noise=LabelNoise(0.2, "pairflip", 1))
    assert noisy.identity()["label_noise"] == {"rate": 0.2, "kind": "pairflip", "seed": 1}
    assert DatasetRef.from_identity(noisy.identity()) == noisy
    plan = expand(load_suite(ROOT / "suites" / "digits_noise.yaml"), load_registry())
    teachers = {t.key for t in plan.teachers}
    assert len(teachers) == 3  # one teacher per rate, trained on its noisy labels
    kd = [r for r in plan.runs if r.label == "KD" and r.seed == 0]
    assert len({r.key for r in kd}) == 3 and {r.dataset.noisy for r in kd} == {False, True}


def test_auroc_and_precision_at_k_against_a_hand_example_and_scikit_learn():
    suspicion = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    flipped = np.array([True, False, True, False, False, False])
    # 2 positives × 4 negatives = 8 pairs; the positive at 0.7 loses only to the negative at 0.8: 7/8
    assert auroc(suspicion, flipped) == pytest.approx(7 / 8)
    assert precision_at_k(suspicion, flipped, 2) == 0.5  # top 2: 0.9 (flipped), 0.8 (clean)
    tied = np.array([1.0, 1.0, 0.0, 0.0])
    assert auroc(tied, np.array([True, False, True, False])) == pytest.approx(0.5)  # ties count half
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=500), rng.random(500) < 0.3
    scores[labels] += 0.8
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    low = detect_flipped(torch.tensor(-scores), torch.tensor(labels), "low")  # a score suspicious when low
    assert low.auroc == pytest.approx(roc_auc_score(labels, scores)) and low.k == int(labels.sum())
    top = np.argsort(-scores, kind="stable")[:50]  # the most suspicious 10% of 500, by hand
    assert low.found_at_10 == pytest.approx(labels[top].sum() / labels.sum())


def test_found_by_inspecting_counts_the_flipped_labels_in_the_most_suspicious_share():
    suspicion = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    flipped = np.array([True, False, False, True, False, False, True, False, False, True])
    assert found_by_inspecting(suspicion, flipped) == 0.25  # 10% of 10 = the top 1: 1 of the 4 flipped
    assert found_by_inspecting(suspicion, flipped, share=0.4) == 0.5  # top 4: samples 0 and 3
    assert found_by_inspecting(suspicion, flipped, share=0.01) == 0.25  # at least one sample is inspected
    assert math.isnan(found_by_inspecting(suspicion, np.zeros(10, dtype=bool)))


def reduced(name: str, tmp_path: Path, **dataset) -> Path:
    """A shipped twin at reduced size: synthetic data in place of digits, one epoch, one seed."""
    suite = yaml.safe_load((ROOT / "suites" / f"{name}.yaml").read_text())
    params = {"num_train": 240, "num_test": 100, "num_classes": 10, "image_size": 8, **dataset}
    suite["dataset"] = {"name": "synthetic", "params": params}
    suite["recipe"].update(epochs=1, milestones=[])
    suite["teacher_recipe"] = {"epochs": 2, "milestones": []}
    suite["seeds"] = [0]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    return path


def run_twin(path: Path, tmp_path: Path) -> str:
    assert main(["run", str(path), "--quiet", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none"),
                 "--threads", "2"]) == 0
    return (tmp_path / "runs" / path.stem / "table.md").read_text()


def test_the_noise_twin_tables_methods_by_rate_and_keeps_the_flipped_indices(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    table = run_twin(reduced("digits_noise", tmp_path), tmp_path)
    for text in ("0% noise", "20% noise", "40% noise", "Teacher", "Student", "KD+LR+DS", "Δ over vanilla KD"):
        assert text in table, text
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "raw" / "digits_noise").glob("*/record.json")]
    noisy = [r for r in records if r["spec"]["dataset"].get("label_noise", {}).get("rate") == 0.4]
    assert noisy and all(len(r["flipped_train"]) == 96 for r in noisy)  # 40% of 240
    assert all("flipped_train" not in r for r in records if "label_noise" not in r["spec"]["dataset"])
    ds = [r for r in noisy if r["selection"]]
    assert ds and all(0.0 <= r["selection"]["detection"]["auroc"] <= 1.0 for r in ds)


def test_the_estimators_twin_tables_accuracy_cost_and_detection(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    table = run_twin(reduced("digits_estimators", tmp_path, val_fraction=0.1), tmp_path)
    for text in ("estimator", "KD+LR+DS", "scoring s", "AUROC", "precision@k", "found@10%", "influence score=self",
                 "influence score=val",
                 "tracin", "knn-shapley", "el2n", "margin", "loss", "teacher-correct", "random", "kronfluence",
                 "trak"):
        assert text in table, text


def test_the_teachers_twin_tables_gain_by_teacher_strength_with_its_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    table = run_twin(reduced("digits_teachers", tmp_path), tmp_path)
    for text in ("teacher top-1", "KD gain over student", "Δ LR+DS over KD", "resnet14", "wrn_16_2"):
        assert text in table, text
    assert (tmp_path / "runs" / "digits_teachers" / "teacher_gain.png").read_bytes()[:4] == b"\x89PNG"


def test_score_reports_how_each_estimator_flags_the_flipped_labels(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = reduced("digits_noise", tmp_path)
    data = yaml.safe_load(suite.read_text())
    suite.write_text(yaml.safe_dump({**data, "label_noise": {"rate": 0.3, "kind": "pairflip", "seed": 2}}))
    out = tmp_path / "scores"
    assert main(["score", str(suite), "--estimator", "loss", "--estimator", "margin", "--estimator", "random",
                 "--out", str(out), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    assert "AUROC" in printed and "precision@k" in printed and "found@10%" in printed
    assert "k = 72 flipped labels" in printed
    (csv,) = out.glob("detection-*.csv")
    rows = {r["estimator"]: r for r in __import__("pandas").read_csv(csv).to_dict("records")}
    assert set(rows) == {"loss", "margin", "random"} and rows["margin"]["suspect_when"] == "low"
    assert all(0.0 <= row["found_at_10"] <= 1.0 for row in rows.values())
    assert rows["loss"]["auroc"] > rows["random"]["auroc"] - 0.2  # a trained teacher's loss is no worse than chance


def test_a_bad_noise_block_in_a_suite_is_one_line_and_exit_2(tmp_path, capsys):
    suite = reduced("digits_noise", tmp_path)
    data = yaml.safe_load(suite.read_text())
    suite.write_text(yaml.safe_dump({**data, "label_noise": {"rate": [0.2, 1.5]}}))
    assert main(["run", str(suite), "--dry-run", "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "label_noise" in err and len(err.strip().splitlines()) == 1


def test_noisy_runs_are_their_own_benchmark_keep_their_tracker_names_and_are_not_compared_with_the_paper():
    from kdbench.run.loggers import run_info
    from kdbench.tables.frame import results_frame
    from kdbench.tables.leaderboard import benchmark_of
    from kdbench.tables.reference import paper_comparison
    from tests.records import make_record, make_spec

    noisy_data = DatasetRef("cifar100", {}, "1", LabelNoise(0.2))
    clean = make_record(make_spec("KD", "kd", "resnet32x4", "resnet8x4", 0, dataset=DatasetRef("cifar100", {}, "1")),
                        74.0, 74.0)
    noisy = make_record(make_spec("KD", "kd", "resnet32x4", "resnet8x4", 0, dataset=noisy_data), 60.0, 60.0)
    assert benchmark_of(noisy) != benchmark_of(clean) and "0.2 symmetric label noise" in benchmark_of(noisy)
    assert run_info(noisy.spec, None).name != run_info(clean.spec, None).name
    compared = paper_comparison(results_frame([clean, noisy]))
    assert not compared.empty and set(compared["mean"]) == {74.0}  # the noisy KD run is not set beside 74.12
