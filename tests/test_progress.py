"""Long work is visible: progress lines with an ETA where no terminal shows a bar (logs, CI, worker processes),
at a bounded rate; scoring counts its teacher passes; the suite's ETA comes from the student runs alone; and
a failed run's line says where its traceback was saved."""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from kdbench.cli import main
from kdbench.plan.spec import ComponentRef
from kdbench.run import progress as progress_module
from kdbench.run.options import RunOptions
from kdbench.run.progress import ProgressBar, duration, progress_display
from kdbench.run.suite_progress import SuiteProgress
from kdbench.run.worker import RunOutcome, Worker
from kdbench.store import TeacherCacheRecord
from kdbench.train.callbacks import Callback, EpochEnd, TrainingStart
from kdbench.train.outcome import EpochMetrics
from tests.records import make_record, make_spec
from tests.test_teacher_cache import run_spec


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def plain_bar(unit: str = "epoch") -> tuple[ProgressBar, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(Console(file=out, force_terminal=False, width=200), unit=unit, clock=clock)
    assert bar.plain
    return bar, out, clock


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


# -- plain lines: a long single phase (a cache build) is never silent, and never floods a log --------------

def test_a_long_phase_prints_lines_with_an_eta_at_a_bounded_rate():
    bar, out, clock = plain_bar(unit="view")
    bar.start(TrainingStart("teacher outputs resnet32x4 (162 views)", 162, 782, 1))  # 126,684 batches
    for _ in range(162 * 782):  # 0.005 s a batch: 10.6 min in all
        clock.now += 0.005
        bar.step()
    bar.finish()
    printed = lines(out)
    assert printed[0] == "teacher outputs resnet32x4 (162 views): started: 162 views × 782 steps"
    steps = printed[1:]
    assert 10 <= len(steps) <= 11  # one a minute (each minute is under 10% of the phase)
    assert steps[0] == ("teacher outputs resnet32x4 (162 views): view 16/162 · 12,000/126,684 steps (9%) · "
                        "60 s elapsed · ETA 10 min")
    assert all("ETA" in line for line in steps)


def test_lines_come_each_tenth_of_a_phase_but_never_twice_within_ten_seconds():
    bar, out, clock = plain_bar()
    bar.start(TrainingStart("short", 1, 1000, 1))
    for _ in range(1000):  # 0.03 s a step: 30 s, a tenth every 3 s
        clock.now += 0.03
        bar.step()
    steps = lines(out)[1:]
    assert len(steps) == 2  # at 10 and 20 s: the 10 s floor, not every tenth
    assert steps[0] == "short: 334/1,000 steps (33%) · 10 s elapsed · ETA 20 s"
    bar, out, clock = plain_bar()
    bar.start(TrainingStart("fast", 1, 1000, 1))
    for _ in range(1000):  # 1 ms a step: the whole phase in a second prints no step line
        clock.now += 0.001
        bar.step()
    assert len(lines(out)) == 1


def epoch_end(epoch: int) -> EpochEnd:
    metrics = EpochMetrics(epoch=epoch, lr=0.1, train_loss=1.5, train_top1=50.0, test_top1=60.0, epoch_time_s=5.0,
                           train_images_per_s=1000.0)
    return EpochEnd(metrics, None)


def test_each_epoch_line_has_an_eta_and_a_resumed_run_counts_only_its_own_pace():
    bar, out, clock = plain_bar()
    bar.start(TrainingStart("kd r8 seed 0", 240, 100, 31))  # resumed: 30 epochs were done before
    for epoch in (31, 32):
        for _ in range(100):
            clock.now += 0.05
            bar.step()
        bar.epoch_end(epoch_end(epoch))
    printed = lines(out)
    assert printed[0] == "kd r8 seed 0: started: 240 epochs × 100 steps, going on from epoch 31"
    assert printed[1:] == ["kd r8 seed 0: epoch 31/240 loss 1.500 top1 60.00 · ETA 17 min",  # 209 epochs × 5 s
                           "kd r8 seed 0: epoch 32/240 loss 1.500 top1 60.00 · ETA 17 min"]
    bar.start(TrainingStart("last", 1, 10, 1))
    for _ in range(10):
        bar.step()
    bar.epoch_end(epoch_end(1))
    assert lines(out)[-1] == "last: epoch 1/1 loss 1.500 top1 60.00"  # nothing left: no ETA


def test_a_terminal_gets_the_bar_and_a_worker_process_gets_lines(monkeypatch):
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert not ProgressBar(terminal).plain
    monkeypatch.setattr(progress_module.multiprocessing, "parent_process", lambda: object())
    assert ProgressBar(terminal).plain  # the processes of an executor share a terminal: no bars
    assert type(progress_display(quiet=True)) is Callback


def test_durations_read_naturally():
    assert [duration(s) for s in (5, 119, 600, 7199, 23040)] == ["5 s", "119 s", "10 min", "120 min", "6.4 h"]


# -- scoring shows its teacher passes ----------------------------------------------------------------------

class Recorder(Callback):
    def __init__(self) -> None:
        self.started: TrainingStart | None = None
        self.steps = 0
        self.finished = False

    def start(self, run):
        self.started = run

    def step(self):
        self.steps += 1

    def finish(self):
        self.finished = True


@pytest.mark.filterwarnings("ignore:tracin with 1 checkpoint")
@pytest.mark.parametrize("estimator", ["influence", "tracin"])
def test_scoring_counts_every_batch_of_its_teacher_passes(isolated_home, monkeypatch, estimator):
    shown: list[Recorder] = []
    monkeypatch.setattr("kdbench.run.scoring.progress_display", lambda quiet: shown.append(Recorder()) or shown[-1])
    worker = Worker(RunOptions(home=str(isolated_home), device="cpu", quiet=True, eval_batch_size=16))
    teacher = run_spec().teacher
    worker.scorer.scores(teacher, ComponentRef(estimator, {}))
    (progress,) = shown
    assert progress.finished and progress.started.label == f"{estimator} scores on resnet8: teacher outputs"
    assert progress.steps == progress.started.steps_per_epoch >= 3  # 40 training images in batches of 16


# -- the suite's ETA: from the student runs, not from teachers, scores or a cache build ---------------------

def finished(seconds_building: float | None = None) -> RunOutcome:
    spec = make_spec("kd", "kd", "resnet32x4", "resnet8", 0)
    record = make_record(spec, best=70.0, last=69.0, teacher_top1=75.0)
    if seconds_building is not None:
        record = record.model_copy(update={"teacher_cache": TeacherCacheRecord(
            used=True, reason="on", built_seconds=seconds_building)})
    return RunOutcome.of(spec, "finished", record)


def test_the_suite_eta_leaves_out_teacher_training_scoring_and_the_cache_build():
    clock = Clock(100.0)
    progress = SuiteProgress(18, clock=clock)
    clock.now += 3000  # the teacher wave: 50 min
    teacher = RunOutcome("t", "teacher resnet32x4", "resnet32x4", None, "finished", kind="teacher",
                         detail="test top-1 75.00")
    assert progress.line(teacher) == "teacher resnet32x4: test top-1 75.00"
    clock.now += 20  # scores
    progress.line(RunOutcome("s", "influence scores on resnet32x4", "resnet32x4", None, "finished", kind="scores",
                             detail="40 samples in 20.00 s"))
    clock.now += 700  # the first run: 600 s building the teacher-output table, 100 s training
    first = progress.line(finished(seconds_building=600.0))
    assert first.startswith("[1/18] finished kd") and first.endswith("· ETA 28 min")  # 17 runs × 100 s
    clock.now += 100
    assert progress.line(finished()).endswith("· ETA 27 min")  # 16 × 100 s
    clock.now += 1  # a run done before: found in a second
    skipped = replace(finished(), status="skipped")
    assert progress.line(skipped).endswith("· ETA 25 min")  # 15 × 100 s


# -- a failed run says where its traceback is ---------------------------------------------------------------

BOOM = """
    from kdbench.contracts import DistillationMethod, hookimpl

    class Boom(DistillationMethod):
        uses_teacher = False

        def loss_terms(self, step):
            raise RuntimeError("boom")

    @hookimpl
    def kdbench_register_methods(register):
        register("boom", Boom)
"""


def test_a_failed_runs_line_names_the_file_with_its_traceback(write_suite, tmp_path, capsys):
    (tmp_path / "boom.py").write_text(textwrap.dedent(BOOM))
    suite = write_suite("""
        name: fails
        dataset: {name: synthetic, params: {num_train: 40, num_test: 24, num_classes: 4, image_size: 8}}
        recipe: {epochs: 1, batch_size: 16, milestones: []}
        teacher_recipe: {epochs: 1}
        seeds: [0]
        pairs: [{teacher: resnet8, student: resnet8}]
        methods: [boom]
        plugins: [boom.py]
    """)
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "runs")]) == 1
    (failure,) = (tmp_path / "runs" / "raw" / "fails").glob("*/failure.json")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " failed boom" in line]
    assert line.endswith(f"RuntimeError: boom · traceback in {failure}")
    assert "raise RuntimeError" in json.loads(failure.read_text())["traceback"]
    assert Path(str(failure)).is_file()


BOOM_TUNE = """
    name: fails
    dataset: {name: digits, params: {image_size: 8, val_fraction: 0.25}}
    recipe: {epochs: 1, batch_size: 64, milestones: []}
    seeds: [0]
    pairs: [{teacher: resnet8, student: resnet8}]
    methods: [boom]
    plugins: [boom.py]
    tune: {method: boom, space: {recipe.lr: {low: 0.01, high: 0.1}}, trials: 1}
"""


def test_a_failed_trials_line_names_the_file_with_its_traceback(write_suite, tmp_path, capsys):
    (tmp_path / "boom.py").write_text(textwrap.dedent(BOOM))
    suite = write_suite(BOOM_TUNE)
    assert main(["tune", str(suite), "--quiet", "--runs", str(tmp_path / "runs")]) == 1
    (failure,) = (tmp_path / "runs" / "raw" / "fails.tune").glob("*/failure.json")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial 0 of fails.boom")]
    assert line.endswith(f": failed: RuntimeError: boom · traceback in {failure}")
    assert "raise RuntimeError" in json.loads(failure.read_text())["traceback"]


# -- a tune trial is watched by its objective, validation top-1 -----------------------------------------------

def test_with_validation_an_epoch_line_shows_validation_top1_not_test():
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(Console(file=out, force_terminal=False, width=200), clock=clock, validation=True)
    bar.start(TrainingStart("trial", 2, 10, 1))
    end = epoch_end(1)
    bar.epoch_end(EpochEnd(end.metrics.model_copy(update={"val_top1": 55.0}), None))
    bar.epoch_end(epoch_end(2))  # no validation split measured: the test split, under its own name
    assert lines(out)[1:] == ["trial: epoch 1/2 loss 1.500 val top1 55.00 · ETA 0 s",
                              "trial: epoch 2/2 loss 1.500 top1 60.00"]
    shown = progress_display(quiet=False, validation=True)
    assert isinstance(shown, ProgressBar) and shown.validation
    assert not progress_display(quiet=False).validation  # a run of a suite: test top-1, as before
