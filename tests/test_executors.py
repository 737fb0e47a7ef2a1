"""Executors: the same records whichever engine runs them, crashes recorded and retried, no run trained twice
by two coordinators, and one clear line when an optional engine is not installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from kdbench.cli import main
from kdbench.store import RunStore

SUITE = {
    "name": "exec", "dataset": {"name": "synthetic", "params": {"num_train": 96, "num_test": 32, "num_classes": 4,
                                                                "image_size": 8}},
    "recipe": {"epochs": 2, "batch_size": 32, "milestones": [1]}, "teacher_recipe": {"epochs": 1},
    "seeds": [0, 1], "pairs": [{"teacher": "resnet14", "student": "resnet8"}],
    "methods": ["ce", "kd", {"name": "kd", "selection": {"estimator": "el2n", "fraction": 0.5}}],
}


def write_suite(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "exec.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **changes}, sort_keys=False))
    return path


def records(runs: Path) -> dict[str, list[dict]]:
    """Per run key, its per-epoch metrics without the timings (which no two machines share)."""
    out = {}
    for path in (runs / "raw" / "exec").glob("*/record.json"):
        record = json.loads(path.read_text())
        out[record["key"]] = [{k: v for k, v in m.items() if k not in ("epoch_time_s", "train_images_per_s")}
                              for m in record["metrics"]]
    return out


def run(tmp_path: Path, name: str, *args: str) -> tuple[int, dict]:
    runs = tmp_path / name
    code = main(["run", str(write_suite(tmp_path)), "--quiet", "--runs", str(runs), "--results", str(tmp_path / "none"),
                 "--threads", "1", *args])
    return code, records(runs)


@pytest.fixture(scope="module")
def serial_records(tmp_path_factory):
    """The suite through the serial executor, once for all the engines compared with it."""
    tmp_path = tmp_path_factory.mktemp("serial")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDBENCH_HOME", str(tmp_path / "home_serial"))
        code, found = run(tmp_path, "serial")
    assert code == 0 and len(found) == 6
    return found


def test_pool_gives_the_records_of_serial(tmp_path, monkeypatch, serial_records, capfd):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home_pool"))  # teachers and scores trained anew, in the pool
    code, found = run(tmp_path, "pool", "--executor", "pool", "--param", "devices=2")
    assert code == 0 and found == serial_records
    out, err = capfd.readouterr()  # the workers' output too
    assert "teacher resnet14: test top-1" in out and "el2n scores on resnet14" in out
    assert " seed 0: epoch " not in err and "started:" not in err  # --quiet: no worker shows its progress
    record = json.loads(next((tmp_path / "pool" / "raw" / "exec").glob("*/record.json")).read_text())
    assert record["environment"]["executor"] == "pool" and record["environment"]["torch_threads"] == 1


@pytest.mark.cluster
def test_submitit_local_gives_the_records_of_serial(tmp_path, monkeypatch, serial_records):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home_submitit"))
    code, found = run(tmp_path, "sub", "--executor", "submitit", "--param", "cluster=local",
                      "--param", "gpus_per_job=0")
    assert code == 0 and found == serial_records
    assert any((tmp_path / "sub" / "submitit").glob("*_log.out"))  # its logs live in the run store


@pytest.mark.cluster
def test_ray_local_gives_the_records_of_serial(tmp_path, monkeypatch, serial_records):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home_ray"))
    code, found = run(tmp_path, "ray", "--executor", "ray", "--param", "num_cpus=2")
    assert code == 0 and found == serial_records


DIES_ONCE = '''
    """A method whose first training process dies (a kill, an out-of-memory), as if the machine lost it."""
    import os
    from pathlib import Path

    from kdbench.contracts import DistillationMethod, LossTerms, cross_entropy_per_sample, hookimpl


    class DiesOnce(DistillationMethod):
        uses_teacher = False

        def __init__(self, marker: str = ""):
            super().__init__()
            self.marker = marker

        def loss_terms(self, step):
            if not Path(self.marker).exists():
                Path(self.marker).write_text("died")
                os._exit(9)
            return LossTerms(sample={"ce": cross_entropy_per_sample(step.student_logits, step.targets)})


    @hookimpl
    def kdbench_register_methods(register):
        register("dies_once", DiesOnce)
'''


def test_a_worker_killed_mid_run_is_recorded_as_failed_and_rerun(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "dies_once.py").write_text(textwrap.dedent(DIES_ONCE))
    marker = str(tmp_path / "died")
    suite = write_suite(tmp_path, methods=["ce", {"name": "dies_once", "params": {"marker": marker}}],
                        plugins=["dies_once.py"], seeds=[0])
    args = ["run", str(suite), "--quiet", "--runs", str(tmp_path / "runs"), "--executor", "pool", "--param",
            "devices=2", "--threads", "1"]
    assert main(args) == 1  # one run failed
    out = capsys.readouterr().out
    assert "failed dies_once" in out and "worker process on cpu died" in out and "finished ce" in out
    (failure,) = (tmp_path / "runs" / "raw" / "exec").glob("*/failure.json")
    assert "died" in json.loads(failure.read_text())["error"]
    assert main(args) == 0  # retried: the second process does not die
    out = capsys.readouterr().out
    assert "finished dies_once" in out and "skipped  ce" in out
    assert not list((tmp_path / "runs" / "raw" / "exec").glob("*/failure.json"))


COUNTS_TRAININGS = '''
    """CE that notes, in a shared file, every time a process starts training a run."""
    import os

    from kdbench.contracts import DistillationMethod, LossTerms, cross_entropy_per_sample, hookimpl


    class Counted(DistillationMethod):
        uses_teacher = False

        def __init__(self, log: str = "", seed_note: int = 0):
            super().__init__()
            self.log, self.noted = log, False

        def setup(self, ctx):
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()}\\n")

        def loss_terms(self, step):
            return LossTerms(sample={"ce": cross_entropy_per_sample(step.student_logits, step.targets)})


    @hookimpl
    def kdbench_register_methods(register):
        register("counted", Counted)
'''


def test_two_coordinators_of_one_suite_train_each_run_once(tmp_path):
    (tmp_path / "counted.py").write_text(textwrap.dedent(COUNTS_TRAININGS))
    log = tmp_path / "trainings.log"
    methods = [{"name": "counted", "label": f"counted{k}", "params": {"log": str(log), "seed_note": k}}
               for k in range(3)]
    suite = write_suite(tmp_path, methods=[*methods, "kd"], plugins=["counted.py"], seeds=[0, 1])
    env = {**os.environ, "KDBENCH_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "kdbench.cli", "run", str(suite), "--quiet", "--runs", str(tmp_path / "runs"),
               "--threads", "1"]
    both = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], [err for _, err in outputs]
    assert len(log.read_text().splitlines()) == 6  # 3 counted runs × 2 seeds, each trained by one process
    trained = sum(out.count("] finished ") for out, _ in outputs)
    skipped = sum(out.count("] skipped ") for out, _ in outputs)
    assert trained == 8 and skipped == 8  # 8 runs: each trained once, found done by the other coordinator
    assert len(list((tmp_path / "home" / "teachers").glob("*/model.pt"))) == 1  # one teacher, trained once
    assert len(list(RunStore(tmp_path / "runs").suite_dir("exec").glob("*/record.json"))) == 8


@pytest.mark.parametrize(("executor", "extra"), [("ray", "ray"), ("submitit", "slurm")])
def test_an_engine_that_is_not_installed_is_one_line(tmp_path, monkeypatch, capsys, executor, extra):
    monkeypatch.setitem(sys.modules, "ray" if executor == "ray" else "submitit", None)  # import fails
    assert main(["run", str(write_suite(tmp_path)), "--runs", str(tmp_path / "runs"), "--executor", executor]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'kdbench[{extra}]'" in lines[0]
    assert not (tmp_path / "runs" / "raw").exists()  # nothing ran


def test_executor_parameters_are_checked_like_any_component(tmp_path, capsys):
    suite = write_suite(tmp_path, executor={"name": "pool", "params": {"devices": "two"}})
    assert main(["run", str(suite), "--runs", str(tmp_path / "runs")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "exec.yaml:" in line and "executor 'pool': parameter 'devices'" in line


@pytest.mark.cluster
def test_a_preempted_submitit_job_is_requeued_with_the_same_job():
    """submitit calls ``checkpoint`` when SLURM preempts a job or its time runs out: the job resubmits itself
    unchanged, and its run resumes from the epoch checkpoint in the run store (tested in test_engine)."""
    import submitit

    from kdbench.run import RunJob
    from kdbench_plugins.executors.slurm import _task_class
    from tests.records import make_spec

    job = RunJob(make_spec("kd", "kd", "resnet20", "resnet8", 0))
    task = _task_class(submitit)(dict, job)
    again = task.checkpoint()
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.function is task
    assert task.job == job  # the state it carries into the requeued job is the plain job itself


PROGRESS_LINE = re.compile(r"ce - → resnet8 seed (\d): (started: 20 epochs × 2 steps"
                           r"|epoch \d+/20 loss \d+\.\d{3} top1 \d+\.\d{2}( · ETA \d+ s)?)")


def test_pool_workers_print_whole_progress_lines(tmp_path, monkeypatch, capfd):
    """Two workers training at once print into one stream: each line arrives whole (lines interleave, never
    their characters). (With ``--quiet`` they print none: test_pool_gives_the_records_of_serial.)"""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = write_suite(tmp_path, methods=["ce"], recipe={"epochs": 20, "batch_size": 16, "milestones": []},
                        dataset={"name": "synthetic", "params": {"num_train": 32, "num_test": 8, "num_classes": 4,
                                                                 "image_size": 8}})
    args = ["run", str(suite), "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "none"), "--threads",
            "1", "--executor", "pool", "--param", "devices=2"]
    assert main(args) == 0
    err = capfd.readouterr().err.splitlines()
    shown = [line for line in err if line.startswith("ce ")]
    assert all(PROGRESS_LINE.fullmatch(line) for line in shown), err
    assert sorted(PROGRESS_LINE.fullmatch(line).group(1) for line in shown) == ["0"] * 21 + ["1"] * 21, err


class Returns:
    """A job that returns the worker it is given; the worker, what ``make_worker`` was called with."""

    label = "returns"

    def execute(self, worker):
        return worker

    def crashed(self, reason):
        return reason


def test_no_executor_silences_its_workers(monkeypatch):
    """Each executor leaves ``quiet`` to the command's ``--quiet`` (the factory's options): a worker of the pool,
    submitit or Ray shows progress like the serial one."""
    from kdbench_plugins.executors import pool, ray_tasks
    from kdbench_plugins.executors.slurm import _task_class

    def make_worker(**settings):
        return settings

    monkeypatch.setattr(pool, "_PROCESS", {})
    pool._start(make_worker, "cpu", 1)
    assert pool._execute(Returns()) == {"device": "cpu", "threads": 1}
    assert _task_class(pytest.importorskip("submitit"))(make_worker, Returns())() == {}
    monkeypatch.setattr(pytest.importorskip("ray"), "get_gpu_ids", lambda: [])
    monkeypatch.setattr(ray_tasks, "_PROCESS", {})
    assert ray_tasks._execute(make_worker, Returns(), 2) == {"device": "cpu", "threads": 2}
