"""End to end through the command line: the quickstart at reduced size, errors, resume, plugins."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdbench.cli import main
from kdbench.run import RunOptions
from kdbench.store import SCHEMA_VERSION
from tests.test_registry import install_throwaway_package, write_plugin_file

ROOT = Path(__file__).resolve().parent.parent


def reduced_quickstart(tmp_path: Path, **overrides) -> Path:
    """The shipped quickstart with tiny images and one epoch, so it runs in seconds."""
    suite = yaml.safe_load((ROOT / "suites" / "quickstart.yaml").read_text())
    suite["dataset"]["params"]["image_size"] = 8
    suite["recipe"].update(epochs=1, milestones=[])
    suite["teacher_recipe"] = {"epochs": 1, "milestones": []}
    suite["seeds"] = [0]
    suite.update(overrides)
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def kdbench_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kdbench.cli", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=300,
    )


def records(results: Path, suite: str = "quickstart") -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (results / "raw" / suite).glob("*/record.json")}


def test_quickstart_through_the_cli(tmp_path):
    """As in a fresh clone: the published quickstart is there, yet every run trains into the run store, and the
    table comes with the published numbers beside."""
    suite = reduced_quickstart(tmp_path)
    published = ROOT / "results"
    proc = kdbench_cli("run", str(suite), "--quiet", "--runs", str(tmp_path / "results"), "--results", str(published),
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trained = [line for line in proc.stdout.splitlines() if re.match(r"\[\d/6\] finished ", line)]
    assert len(trained) == 6 and "skipped" not in proc.stdout  # trained, not replayed
    assert "Yours vs published" in proc.stdout and "| Student (scratch) | – → resnet8" in proc.stdout
    scratch = [json.loads(f.read_text()) for f in (published / "raw" / "quickstart").glob("*/record.json")]
    scratch = [r["best_top1"] for r in scratch if r["method"] == "ce"]
    published_cell = f"{statistics.mean(scratch):.2f} ± {statistics.stdev(scratch):.2f}"
    scratch_line = "| Student (scratch) | – → resnet8        | "  # the table's row name, beside this run's
    assert scratch_line in proc.stdout and published_cell in proc.stdout
    reproduction = (tmp_path / "results" / "quickstart" / "reproduction.csv").read_text().splitlines()
    assert reproduction[0].startswith("row,pair,yours_mean") and len(reproduction) == 1 + 1 + 6
    recs = records(tmp_path / "results")
    assert sorted(r["label"] for r in recs.values()) == ["ce", "kd", "kd+DS", "kd+LR", "kd+LR+DS", "mse_kd"]
    for r in recs.values():
        assert r["status"] == "finished" and len(r["metrics"]) == 1
        assert r["spec"]["recipe"]["epochs"] == 1 and r["environment"]["torch"]
        assert 0 <= r["best_top1"] <= 100 and r["wall_time_s"] > 0
        assert r["metrics"][0]["test_top5"] >= r["metrics"][0]["test_top1"] and r["last_top5"] >= r["last_top1"]
        assert "git_revision" in r and r["schema_version"] == SCHEMA_VERSION
        env = r["environment"]
        assert env["executor"] == "serial" and env["host"] and env["device_name"] and env["device"] == "cpu"
    kd = next(r for r in recs.values() if r["label"] == "kd")
    assert kd["teacher"] == "resnet20" and kd["teacher_top1"] is not None and kd["selection"] is None
    ours = next(r for r in recs.values() if r["label"] == "kd+LR+DS")
    assert ours["selection"]["teacher_samples"] == round(0.8 * ours["selection"]["samples"])
    assert ours["selection"]["estimator_info"]["solver"] == "exact"
    assert {"loss_ce", "loss_lr_right", "loss_lr_wrong"} <= set(ours["metrics"][0])
    assert ours["spec"]["revision"]["params"] == {"eta": 0.8}
    table = (tmp_path / "results" / "quickstart" / "table.md").read_text()
    for row in ("Teacher", "Student (scratch)", "kd", "mse_kd", "kd+LR+DS", "resnet20 → resnet8"):
        assert row in table and row in proc.stdout
    csv = (tmp_path / "results" / "quickstart" / "table.csv").read_text()
    assert csv.splitlines()[0] == "row,pair,metric,mean,std,n"

    # a second run finds everything done and recomputes nothing
    before = {k: (tmp_path / "results/raw/quickstart" / k / "record.json").read_bytes() for k in recs}
    again = kdbench_cli("run", str(suite), "--quiet", "--runs", str(tmp_path / "results"), "--results",
                        str(tmp_path / "nothing-published"), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("skipped") == 6
    assert before == {k: (tmp_path / "results/raw/quickstart" / k / "record.json").read_bytes() for k in recs}

    # tables regenerate from the records alone
    (tmp_path / "results" / "quickstart" / "table.md").unlink()
    assert main(["tables", str(tmp_path / "results" / "raw" / "quickstart"), "--metric", "last"]) == 0
    assert "last top-1" in (tmp_path / "results" / "quickstart" / "table.md").read_text()
    (tmp_path / "results" / "quickstart" / "table.md").unlink()  # by suite name, from the run store
    assert main(["tables", "quickstart", "--runs", str(tmp_path / "results")]) == 0
    assert "best top-1" in (tmp_path / "results" / "quickstart" / "table.md").read_text()


def test_dry_run_lists_without_training(tmp_path, capsys):
    suite = reduced_quickstart(tmp_path, seeds=[0, 1])
    assert main(["run", str(suite), "--dry-run", "--runs", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "12 runs, 0 already finished; 1 teacher(s)" in out
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.yaml"], "suite file not found"),
        (["run", "bad.yaml"], "bad.yaml:3: unknown method 'kdx'; did you mean 'kd'"),
        (["teacher", "eval", "ckpt.pth", "--arch", "resnet14", "--dataset", "digits"], "does not fit resnet14"),
        (["run", "cifar.yaml", "--data-root", "nowhere"], "cifar100"),
        (["list", "method", "--plugin", "nope.py"], "plugin file not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, args, message, monkeypatch, capsys):
    import torch

    from tests.zoo import CIFAR_MODELS

    (tmp_path / "bad.yaml").write_text(
        "dataset: digits\npairs: [{teacher: resnet8, student: resnet8}]\nmethods: [ce, kdx]\n"
    )
    (tmp_path / "cifar.yaml").write_text("dataset: cifar100\npairs: [{student: resnet8}]\nmethods: [ce]\n")
    torch.save({"model": CIFAR_MODELS["resnet8"](num_classes=10).state_dict()}, tmp_path / "ckpt.pth")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(list(args)) == 2  # an uncaught exception would fail the test with its traceback
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdbench: error: ") and message in lines[0]


def test_interrupted_run_resumes_and_keeps_finished_records(tmp_path, monkeypatch):
    from kdbench.run import worker as runner

    suite = reduced_quickstart(tmp_path)
    results = tmp_path / "results"
    real_train, calls = runner.Worker._train, []

    def dies_on_second_run(self, spec, observer=None):
        calls.append(spec.label)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(self, spec, observer)

    monkeypatch.setattr(runner.Worker, "_train", dies_on_second_run)
    assert main(["run", str(suite), "--quiet", "--runs", str(results)]) == 130
    first = records(results)
    assert len(first) == 1
    kept = {k: (results / "raw/quickstart" / k / "record.json").read_bytes() for k in first}

    monkeypatch.setattr(runner.Worker, "_train", real_train)
    assert main(["run", str(suite), "--quiet", "--runs", str(results)]) == 0
    assert len(records(results)) == 6
    assert kept == {k: (results / "raw/quickstart" / k / "record.json").read_bytes() for k in first}


def test_failed_run_is_recorded_as_failure_not_result(tmp_path, capsys):
    plugin = tmp_path / "nan_method.py"
    plugin.write_text(
        "from kdbench.contracts import hookimpl\n"
        "from kdbench.contracts import DistillationMethod, LossTerms\n"
        "class Nan(DistillationMethod):\n"
        "    uses_teacher = False\n"
        "    def loss_terms(self, step):\n"
        "        return LossTerms(sample={'x': step.student_logits.sum(1) * float('nan')})\n"
        "@hookimpl\n"
        "def kdbench_register_methods(register):\n"
        "    register('nan_method', Nan)\n"
    )
    suite = reduced_quickstart(tmp_path, methods=["ce", "nan_method"], plugins=["nan_method.py"])
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "r")]) == 1
    raw = tmp_path / "r" / "raw" / "quickstart"
    failures = list(raw.glob("*/failure.json"))
    assert len(failures) == 1 and "TrainingDiverged" in failures[0].read_text()
    assert not (failures[0].parent / "record.json").exists()
    assert "failed nan_method" in capsys.readouterr().out


def test_single_file_plugin_method_runs_in_a_suite(tmp_path):
    write_plugin_file(tmp_path / "half_ce.py")
    suite = reduced_quickstart(tmp_path, methods=["half_ce"], plugins=["half_ce.py"])
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "r")]) == 0
    (rec,) = records(tmp_path / "r").values()
    assert rec["method"] == "half_ce" and rec["spec"]["method"]["version"] == "7"
    assert {"loss_ce", "loss_l1"} <= set(rec["metrics"][0])


def test_entry_point_package_method_runs_in_a_suite(tmp_path, monkeypatch, capsys):
    install_throwaway_package(tmp_path / "site", monkeypatch) if (tmp_path / "site").mkdir() is None else None
    suite = reduced_quickstart(tmp_path, methods=["entry_point_method"])
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "r")]) == 0
    (rec,) = records(tmp_path / "r").values()
    assert rec["method"] == "entry_point_method"
    assert main(["list", "method"]) == 0
    assert "entry_point_method" in capsys.readouterr().out


def test_list_shows_parameters_and_defaults(capsys):
    assert main(["list", "method"]) == 0
    out = capsys.readouterr().out
    assert "T=4.0" in out and "gamma=0.1" in out and "mse_kd" in out


def test_checkpoint_that_does_not_fit_fails_before_any_training(tmp_path):
    import torch

    from tests.zoo import CIFAR_MODELS

    torch.save({"model": CIFAR_MODELS["resnet8"](num_classes=10).state_dict()}, tmp_path / "t.pth")
    suite = reduced_quickstart(tmp_path, pairs=[{"teacher": "resnet20", "student": "resnet8", "checkpoint": "t.pth"}])
    proc = kdbench_cli("run", str(suite), "--quiet", "--runs", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2 and "t.pth does not fit resnet20" in proc.stderr
    assert not list((tmp_path / "r").rglob("record.json"))


def test_teacher_train_then_list_then_reuse(tmp_path, capsys):
    suite = reduced_quickstart(tmp_path)
    assert main(["teacher", "train", str(suite), "--quiet"]) == 0
    assert "resnet20 (" in capsys.readouterr().out
    assert main(["teacher", "list"]) == 0
    listing = capsys.readouterr().out
    assert "resnet20" in listing and "digits" in listing
    # the suite's runs now reuse the stored teacher: the dry run reports it, the real run trains none
    from kdbench.run import teachers

    def no_teacher_training(*args, **kwargs):
        raise AssertionError("teacher should come from the store")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(teachers.Teachers, "train", no_teacher_training)
        assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "r")]) == 0


def test_score_writes_csv_and_histogram(tmp_path, capsys):
    import pandas as pd

    suite = reduced_quickstart(tmp_path)
    out = tmp_path / "scores"
    args = ["score", str(suite), "--estimator", "influence", "--param", "score=self", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "influence scored 1437 samples in" in printed and "higher scores go to the teacher" in printed
    (csv,) = out.glob("influence-resnet20-*.csv")
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["index", "label", "score", "teacher_correct"] and len(frame) == 1437
    assert frame["score"].notna().all() and (frame["score"] >= 0).all()  # self-influence is a quadratic form
    png = csv.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert main(args) == 0 and "influence scored" in capsys.readouterr().out  # cached: same answer
    assert main(["score", str(suite), "--estimator", "influence", "--param", "solver"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.yaml", "--threads", "0"], "'--threads'"),  # the range is checked before the suite is read
        (["run", "missing.yaml", "--nproc", "0"], "'--nproc'"),
        (["run", "missing.yaml", "--eval-batch-size", "0"], "'--eval-batch-size'"),
        (["score", "missing.yaml", "--loader-workers", "-1"], "'--loader-workers'"),
        (["tune", "missing.yaml", "--trials", "0"], "'--trials'"),
        (["run", "missing.yaml", "--checkpoint-every", "-1"], "'--checkpoint-every'"),
        (["run", "missing.yaml", "--threads", "two"], "'--threads'"),
        (["tables", "quickstart", "--metric", "worst"], "'worst' is not one of 'best', 'last'"),
        (["tables", "quickstart", "--layout", "grid"], "'grid' is not one of 'method_pair'"),
        (["list", "widget"], "'widget' is not one of 'method'"),
        (["run", "missing.yaml", "--bogus"], "No such option: --bogus"),
        (["run"], "Missing argument 'SUITE'"),
        (["teacher", "eval", "ckpt.pth"], "Missing option '--arch'"),
        (["teacher"], "Missing command"),
        (["train"], "No such command 'train'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, message, monkeypatch, capsys):
    """A bad option value, a number out of range, an unknown option or a missing argument: one line, no panel."""
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdbench: error: ") and message in lines[0], lines
    assert not captured.out and not (tmp_path / "runs").exists()


def test_help_lists_every_command_and_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "tune", "list", "tables", "score", "teacher", "export-folder", "publish", "leaderboard",
                    "--install-completion", "--show-completion"):
        assert command in out
    assert main(["run", "-h"]) == 0
    out = capsys.readouterr().out
    assert "--checkpoint-every N" in out and "--quiet" in out and "no progress bars" in out


def test_shell_completion_offers_commands_and_choices(tmp_path):
    env = {**os.environ, "_KDBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "kdbench tables x --metric ",
           "COMP_CWORD": "4"}
    proc = subprocess.run([sys.executable, "-m", "kdbench.cli"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["best", "last"], proc.stderr


def test_readme_command_table_is_the_clis():
    """The table under README's Commands is rendered from the CLI: `python -m kdbench.cli.reference` rewrites it."""
    from kdbench.cli.reference import differences

    assert differences(ROOT / "README.md") == []


def test_readme_check_names_what_the_table_lacks_and_rewrites_it(tmp_path, capsys):
    from kdbench.cli import reference

    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    readme.write_text(text.replace(" [--quiet] [--memory-format", " [--memory-format"))
    assert reference.differences(readme) == ["kdbench run: the table lacks [--quiet]; it lists nothing that the CLI "
                                             "does not have"]
    assert reference.main(["--check", str(readme)]) == 1 and "kdbench run" in capsys.readouterr().err
    assert reference.main([str(readme)]) == 0 and readme.read_text() == text


EXECUTION_DEFAULTS = {"data_root": "elsewhere", "download": True, "device": "cuda:7", "eval_batch_size": 77,
                      "threads": 5, "loader_workers": 3, "nproc": 6, "quiet": True, "force": True,
                      "checkpoint_every": 9, "channels_last": False}
COMMAND_DEFAULTS = """
import json, sys
from kdbench.run.options import RunOptions
for name, value in json.loads(sys.argv[1]).items():  # RunOptions' defaults changed before the CLI is built
    setattr(RunOptions, name, value)
import typer
from kdbench.cli.app import app
from kdbench.cli.reference import _commands
print(json.dumps({" ".join(path): {p.name: [p.default, p.help] for p in command.params}
                  for path, command in _commands(typer.main.get_command(app))}))
"""


def test_every_commands_execution_defaults_are_run_options():
    """The execution options' defaults (and the defaults their help names) come from RunOptions, the one source:
    change one there and every command follows."""
    proc = subprocess.run([sys.executable, "-c", COMMAND_DEFAULTS, json.dumps(EXECUTION_DEFAULTS)],
                          capture_output=True, text=True, timeout=120, check=True)
    commands = json.loads(proc.stdout)
    executing = {path for path, params in commands.items() if "device" in params}
    assert executing >= {"run", "tune", "score", "export-folder", "teacher train", "teacher eval"}
    for path in executing:
        for name, (default, help_text) in commands[path].items():
            if name in EXECUTION_DEFAULTS:
                assert default == EXECUTION_DEFAULTS[name], (path, name)
                if getattr(RunOptions, name) is not None:  # a help text says what None means instead
                    assert "default: " not in help_text or f"default: {default}" in help_text, (path, name, help_text)
    assert {"force", "checkpoint_every"} <= commands["run"].keys() and "checkpoint_every" in commands["tune"]
    assert commands["run"]["memory_format"][0] == "contiguous"  # RunOptions.channels_last False, as set above
    assert "default: contiguous" in commands["run"]["memory_format"][1]
