"""Building the leaderboard from a generated set of published records (no training).

The records are what a full publication holds: two benchmarks (CIFAR-100 and digits), three teacher →
student pairs each, every registered method plus KD with Data Selection and with Label Revision, three
seeds, and the students from scratch, built the way the worker builds them. ``test_leaderboard_boards``
times the tables alone (records already in memory); ``test_leaderboard_write`` times ``kdbench
leaderboard``'s whole path: reading the published records, the CSVs, Markdown and the HTML page with its
accuracy-vs-time figures (inline SVG). ``leaderboard_scale.py`` beside it measures the same path on 10,000
records, with its memory and page size.
"""

from __future__ import annotations

import random

import pytest

from kdbench.contracts import TrainingRecipe
from kdbench.plan import ComponentRef, DatasetRef, RevisionSpec, RunSpec, SelectionSpec, TeacherSpec
from kdbench.registry import load_registry
from kdbench.store import Environment, EpochRecord, RunRecord, RunStore
from kdbench.store import published_records as read_published
from kdbench.tables.leaderboard import board_markdown, boards
from kdbench.tables.leaderboard_files import write_leaderboard

SEEDS = (0, 1, 2)
BENCHMARKS = [
    (DatasetRef("cifar100", {}, "1"),
        TrainingRecipe(epochs=240, batch_size=64, lr=0.05, milestones=(150, 180, 210), lr_decay=0.1, momentum=0.9,
                       weight_decay=5e-4, nesterov=False, augment=True, drop_last=False),
        [("resnet56", "resnet20"), ("resnet110", "resnet32"), ("resnet32x4", "resnet8x4")]),
    (DatasetRef("digits", {"image_size": 32}, "1"),
        TrainingRecipe(epochs=15, batch_size=64, lr=0.05, milestones=(10,), lr_decay=0.1, momentum=0.9,
                       weight_decay=5e-4, nesterov=False, augment=True, drop_last=False),
        [("resnet20", "resnet8"), ("resnet32", "resnet14"), ("resnet56", "resnet20")]),
]
ENVIRONMENT = Environment(python="3.11", platform="bench", torch="bench", kdbench="0.1.0", device="cuda",
                          host="benchhost", device_name="bench GPU", executor="serial")
DS = SelectionSpec(fraction=0.8, order="highest", estimator=ComponentRef("influence", {"score": "param_norm"}, "1"))
LR = RevisionSpec(strategy=ComponentRef("paper", {}, "1"))


def published_records() -> list[tuple[RunSpec, RunRecord]]:
    """Every (spec, record) of the generated publication, with seeded accuracies and times."""
    rng = random.Random(0)
    methods = [m for m in load_registry().names("method") if m != "ce"]
    out = []
    for dataset, recipe, pairs in BENCHMARKS:
        for order, (teacher, student) in enumerate(pairs):
            tspec = TeacherSpec(teacher, "1", dataset, recipe, 0)
            entries = [("ce", "ce", None, {})] + [(m, m, tspec, {}) for m in methods] + [
                ("kd+DS", "kd", tspec, {"selection": DS}), ("kd+LR", "kd", tspec, {"revision": LR})]
            for entry, (label, method, t, extra) in enumerate(entries):
                for seed in SEEDS:
                    spec = RunSpec(suite=f"{dataset.name}_bench", label=label, method=ComponentRef(method, {}, "1"),
                                   student=student, student_version="1", dataset=dataset, recipe=recipe, seed=seed,
                                   teacher=t, order=(order, entry), **extra)
                    out.append((spec, _record(spec, rng)))
    return out


def _record(spec: RunSpec, rng: random.Random) -> RunRecord:
    epochs = []
    top1 = 0.0
    for epoch in range(1, spec.recipe.epochs + 1, max(1, spec.recipe.epochs // 12)):  # a dozen logged epochs
        top1 = min(99.0, 30.0 + 40.0 * (1 - 0.9 ** epoch) + rng.gauss(0, 1.0))
        epochs.append(EpochRecord(epoch=epoch, lr=spec.recipe.lr_at(epoch), train_loss=1.0 / epoch,
                                  train_top1=top1 + 5, test_top1=top1, epoch_time_s=30.0 + rng.random(),
                                  train_images_per_s=5000.0 + rng.random() * 100, loss_ce=1.0 / epoch))
    best = max(e.test_top1 for e in epochs)
    return RunRecord(
        key=spec.key, suite=spec.suite, label=spec.label, method=spec.method.name, student=spec.student,
        teacher=spec.teacher.arch if spec.teacher else None, pair=spec.pair, seed=spec.seed,
        dataset=spec.dataset.name, spec=spec, last_top1=top1, best_top1=best, best_epoch=epochs[-1].epoch,
        teacher_top1=75.0 if spec.teacher else None, teacher_key=spec.teacher.key if spec.teacher else None,
        selection=None, metrics=epochs, wall_time_s=sum(e.epoch_time_s for e in epochs), train_images_per_s=5000.0,
        environment=ENVIRONMENT, git_revision=None, finished_at=0.0,
    )


@pytest.fixture(scope="module")
def records() -> list[tuple[RunSpec, RunRecord]]:
    return published_records()


def test_leaderboard_boards(benchmark, records):
    runs = [record for _, record in records]

    def build() -> list[str]:
        return [board_markdown(board) for board in boards(runs)]

    benchmark.group = f"leaderboard: {len(runs)} published records"
    pages = benchmark.pedantic(build, rounds=5, iterations=1, warmup_rounds=1)
    assert len(pages) == len(BENCHMARKS)
    benchmark.extra_info["records"] = len(runs)


def test_leaderboard_write(benchmark, records, tmp_path):
    published = RunStore(tmp_path / "results")
    for spec, record in records:
        published.write_record(spec, record)
    benchmark.group = f"leaderboard: {len(records)} published records"

    def read_and_write() -> tuple:
        return write_leaderboard(published, read_published(published), built_on="2026-01-01")

    built, files = benchmark.pedantic(read_and_write, rounds=5, iterations=1, warmup_rounds=1)
    assert len(built) == len(BENCHMARKS) and files
    benchmark.extra_info["records"] = len(records)
