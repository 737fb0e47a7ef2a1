"""``kdbench doctor``: the whole examination on this CPU through the CLI, and how it reports what fails."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import kdbench.run.doctor as doctor_package
from kdbench.cli import main
from kdbench.contracts.epochs import EpochFields
from kdbench.run.doctor.checks import EXACT, _same
from kdbench.run.doctor.report import CheckResult
from kdbench.run.doctor.sandbox import largest_difference


def test_doctor_passes_on_this_cpu_and_writes_one_table_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--out", str(out), "--no-speed"]) == 0  # the speed rows: the next test, at a small size
    report = json.loads(out.read_text())
    rows = {row["check"]: row for row in report["checks"]}
    assert report["ok"] and report["counts"]["fail"] == 0
    for check in ("tiny KD run, live teacher", "teacher-output cache", "pool executor, 2 slots",
                  "DDP, gloo on the CPU", "streamed image folder"):
        assert rows[check]["status"] == "pass", rows[check]
    assert rows["training speed"]["status"] == "n/a"  # skipped on request: not a pass
    assert "bit for bit" in rows["teacher-output cache"]["result"]
    assert "bit for bit" in rows["pool executor, 2 slots"]["result"]
    if not torch.cuda.is_available():  # a CPU box: the GPU paths are not applicable, which is not a pass
        assert rows["CUDA torch.compile"]["status"] == "n/a" and rows["DDP, NCCL"]["status"] == "n/a"
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["check", "result", "figure"]
    assert "failed" in printed.splitlines()[-1] and str(out) in printed
    assert not (tmp_path / "home" / "teachers").exists()  # the tiny teacher lived in a temporary home


def test_a_check_that_breaks_is_one_failure_row_and_exit_code_1(tmp_path, monkeypatch, capsys):
    def fine(exam):
        return [CheckResult("fine", "pass", "all good")]

    def broken(exam):
        raise RuntimeError("first line\nthe line that says what happened")

    def not_here(exam):
        return [CheckResult("gpu thing", "n/a", "no CUDA device")]

    monkeypatch.setattr(doctor_package, "CHECKS", (fine, broken, not_here))
    monkeypatch.setitem(doctor_package.NAMES, broken, "broken path")
    out = tmp_path / "d.json"
    assert main(["doctor", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["ok"] is False and report["counts"] == {"pass": 1, "fail": 1, "n/a": 1}
    assert report["checks"][1] == {**report["checks"][1], "check": "broken path", "status": "fail",
                                   "result": "RuntimeError: the line that says what happened"}
    assert "1 passed, 1 failed, 1 not applicable" in capsys.readouterr().out


def _record(*losses: float) -> SimpleNamespace:
    epochs = [EpochFields(epoch=i + 1, lr=0.1, train_loss=loss, train_top1=50.0, test_top1=40.0,
                          epoch_time_s=float(i) * 7, train_images_per_s=100.0 + i) for i, loss in enumerate(losses)]
    return SimpleNamespace(metrics=epochs)


def test_runs_are_compared_on_every_number_but_their_timings():
    a, b = _record(2.0, 1.5), _record(2.0, 1.5)
    b.metrics[1] = b.metrics[1].model_copy(update={"epoch_time_s": 99.0, "train_images_per_s": 1.0})
    assert largest_difference(a, b) == 0.0
    assert _same("cache", a, b, EXACT, "x").status == "pass"
    c = _record(2.0, 1.5 + 2e-6)
    assert largest_difference(a, c) == pytest.approx(2e-6)
    assert _same("cache", a, c, EXACT, "x").status == "fail"
    assert _same("ddp", a, c, 1e-4, "x").status == "pass"
    assert largest_difference(a, _record(2.0)) == float("inf")  # an epoch missing is never "close"


def test_the_cuda_checks_hold_their_runs_to_the_fp32_run(tmp_path, monkeypatch):
    """The CUDA checks' own logic, run on the CPU (where autocast is off and the cache is exact, so each must
    pass); on a GPU box the same functions run on CUDA (and CI has none). torch.compile is left out: a minute
    of compiling on this CPU."""
    from dataclasses import replace

    from kdbench.run.doctor import checks
    from kdbench.run.doctor.sandbox import Sandbox

    monkeypatch.setattr(checks, "CUDA", replace(checks.CUDA, device="cpu", threads=1))
    exam = checks.Examination(Sandbox(tmp_path), checks.DoctorSettings(device="cpu"))
    exam.cuda = True
    for check in (checks.cuda_bf16, checks.cuda_cache, checks.cuda_channels_last):
        (row,) = check(exam)
        assert row.status == "pass" and row.figure.endswith("apart"), row


def test_the_speed_check_measures_images_per_second_through_the_engine(registry):
    from kdbench.run.doctor.speed import StepSize, images_per_second

    tiny = StepSize("resnet8", "resnet8", batch_size=8, steps=2, image_size=8, num_classes=10)
    for method in ("ce", "kd"):
        assert images_per_second(registry, method, "cpu", tiny) > 0
