"""Loggers: each tracker, read back with its own library, holds the record's per-epoch numbers; a logger
that raises never fails a run; an unknown logger or a missing extra is one line and exit 2."""

from __future__ import annotations

import json
import re
import struct
import sys
import textwrap
from pathlib import Path

import pydantic
import pytest
import yaml

from kdbench.cli import main

SUITE = {
    "name": "logs", "dataset": {"name": "digits", "params": {"image_size": 8}},
    "recipe": {"epochs": 2, "batch_size": 64, "milestones": [1]}, "teacher_recipe": {"epochs": 1},
    "pairs": [{"teacher": "resnet8", "student": "resnet8"}], "methods": ["kd"],
}

# A throwaway plugin: `broken` raises on every epoch, `notes` writes every call it gets to a JSON-lines file.
LOGGERS_PLUGIN = """
    import json
    from pathlib import Path

    from kdbench.contracts import RunLogger, hookimpl


    class Broken(RunLogger):
        def epoch(self, metrics):
            raise OSError("No space left on device")


    class Notes(RunLogger):
        def __init__(self, runs_root: str = "runs"):
            self.path = Path(runs_root) / "notes.jsonl"

        def _note(self, call, data=None):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps({"call": call, "data": data}) + "\\n")

        def start(self, run):
            self._note("start", {"kind": run.kind, "group": run.group, "name": run.name, "tags": run.tags()})

        def epoch(self, metrics):
            self._note("epoch", dict(metrics.values))

        def finish(self, final):
            self._note("finish", final.record["key"])

        def close(self):
            self._note("close")


    @hookimpl
    def kdbench_register_loggers(register):
        register("broken", Broken)
        register("notes", Notes)
"""


def write_suite(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "logs.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **changes}, sort_keys=False))
    return path


def run(tmp_path: Path, *args: str, **changes) -> int:
    return main(["run", str(write_suite(tmp_path, **changes)), "--quiet", "--threads", "1", "--runs",
                 str(tmp_path / "runs"), "--results", str(tmp_path / "none"), *args])


def stored(runs: Path) -> dict:
    (path,) = (runs / "raw" / "logs").glob("*/record.json")
    return json.loads(path.read_text())


def per_epoch(record: dict) -> dict[int, dict[str, float]]:
    return {m["epoch"]: {k: v for k, v in m.items() if k != "epoch"} for m in record["metrics"]}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[Path, dict]:
    """One teacher and one KD run, logged to TensorBoard, W&B (offline) and MLflow (SQLite) at once."""
    tmp_path = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("WANDB_MODE", raising=False)
        code = run(tmp_path, "--log", "tensorboard", "--log", "wandb", "--log", "mlflow",
                   "--log-param", "wandb.mode=offline")
    assert code == 0
    return tmp_path / "runs", stored(tmp_path / "runs")


def test_tensorboard_holds_the_records_numbers(tracked):
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    runs, record = tracked
    suite_dir = runs / "tensorboard" / "logs"
    assert sorted(p.name for p in suite_dir.iterdir()) == ["kd__resnet8-resnet8__seed0", "teacher__resnet8__seed0"]
    events = EventAccumulator(str(suite_dir / "kd__resnet8-resnet8__seed0"), size_guidance={TENSORS: 0})
    events.Reload()
    logged: dict[int, dict[str, float]] = {}
    for tag in events.Tags()["tensors"]:
        if events.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue  # the record as text
        for event in events.Tensors(tag):
            logged.setdefault(event.step, {})[tag] = float(make_ndarray(event.tensor_proto))
    for epoch, values in per_epoch(record).items():
        assert {k: logged[epoch][k] for k in values} == values  # float64: the very numbers of the record
        assert logged[epoch]["teacher_cache_used"] == float(record["teacher_cache"]["used"])
    assert logged[2]["best_top1"] == record["best_top1"]
    hparams = events.PluginTagToContent("hparams")  # the HParams plugin's experiment, session start and end
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)


def wandb_records(path: Path):
    """The protobuf records of a W&B transaction log (``run-<id>.wandb``): a 7-byte header, then LevelDB-style
    32 KiB blocks of chunks (crc32, length, type: full / first / middle / last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block  # a block's tail too short for a chunk header is padding
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            break
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_the_records_numbers(tracked):
    runs, record = tracked
    found = {}
    for log in (runs / "wandb").glob("offline-run-*/run-*.wandb"):
        items = list(wandb_records(log))
        run = next(r.run for r in items if r.WhichOneof("record_type") == "run")
        history = {}
        for r in items:
            if r.WhichOneof("record_type") == "history":
                row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
                history[row["_step"]] = row
        found[run.run_group] = (run, history)
    assert set(found) == {"logs", "logs.teachers"}  # one W&B run each, the teacher in its own group
    run, history = found["logs"]
    assert run.project == "kdbench" and run.display_name == "logs/kd__resnet8-resnet8__seed0"
    assert {"method:kd", "pair:resnet8-resnet8", "run"} <= set(run.tags)
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert config["method"] == record["spec"]["method"] and config["recipe"] == record["spec"]["recipe"]
    for epoch, values in per_epoch(record).items():
        assert {k: history[epoch][k] for k in values} == values


def test_mlflow_run_holds_the_records_numbers(tracked):
    from mlflow import MlflowClient

    runs, record = tracked
    client = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("logs")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "kd__resnet8-resnet8__seed0"
    assert run.data.params["method.name"] == "kd" and run.data.params["seed"] == "0"
    assert run.data.tags["kdbench.key"] == record["key"]
    epochs = per_epoch(record)
    for name in epochs[1]:
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert history == {e: epochs[e][name] for e in epochs}, name
    artifact = client.download_artifacts(run.info.run_id, "record.json", str(runs.parent / "artifact"))
    assert json.loads(Path(artifact).read_text()) == record
    (teacher,) = client.search_runs([client.get_experiment_by_name("logs.teachers").experiment_id])
    assert teacher.info.run_name == "teacher__resnet8__seed0"


def test_a_logger_that_raises_does_not_fail_the_run(tmp_path, capsys):
    (tmp_path / "trackers.py").write_text(textwrap.dedent(LOGGERS_PLUGIN))
    assert run(tmp_path, "--plugin", str(tmp_path / "trackers.py"), "--log", "broken", "--log", "notes",
               pairs=[{"student": "resnet8"}], methods=["ce"]) == 0
    record = stored(tmp_path / "runs")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "logger 'broken' failed in epoch() for ce - → resnet8 seed 0" in warnings[0]
    assert "OSError: No space left on device" in warnings[0]
    notes = [json.loads(line) for line in (tmp_path / "runs" / "notes.jsonl").read_text().splitlines()]
    assert [n["call"] for n in notes] == ["start", "epoch", "epoch", "finish", "close"]
    assert [n["data"] for n in notes[1:3]] == record["metrics"] and notes[3]["data"] == record["key"]
    assert notes[0]["data"]["tags"] == ["method:ce", "pair:resnet8", "run"]


def test_loggers_change_no_key(tmp_path, capsys):
    (tmp_path / "trackers.py").write_text(textwrap.dedent(LOGGERS_PLUGIN))
    suite = write_suite(tmp_path, plugins=["trackers.py"], loggers=["notes", {"name": "broken"}])
    keys = []
    for extra in ([], ["--log", "none"]):
        assert main(["run", str(suite), "--dry-run", "--runs", str(tmp_path / "r"), *extra]) == 0
        keys.append(sorted(line.split()[1] for line in capsys.readouterr().out.splitlines() if " todo" in line))
    assert keys[0] == keys[1] and len(keys[0]) == 1


def test_pool_workers_log_their_own_runs(tmp_path):
    (tmp_path / "trackers.py").write_text(textwrap.dedent(LOGGERS_PLUGIN))
    assert run(tmp_path, "--executor", "pool", "--param", "devices=1", "--param", "threads=1", "--log", "notes",
               pairs=[{"student": "resnet8"}], methods=["ce"], plugins=["trackers.py"]) == 0
    notes = [json.loads(line) for line in (tmp_path / "runs" / "notes.jsonl").read_text().splitlines()]
    assert [n["call"] for n in notes] == ["start", "epoch", "epoch", "finish", "close"]
    assert [n["data"] for n in notes[1:3]] == stored(tmp_path / "runs")["metrics"]


@pytest.mark.parametrize(
    ("args", "changes", "message"),
    [
        (["--log", "tensorbord"], {}, r"--log: unknown logger 'tensorbord'; did you mean 'tensorboard'\?"),
        ([], {"loggers": ["mlflw"]}, r"logs\.yaml:\d+: unknown logger 'mlflw'; did you mean 'mlflow'\?"),
        (["--log", "wandb", "--log-param", "wandb.projekt=x"], {}, "logger 'wandb' has no parameter 'projekt'"),
        (["--log-param", "wandb.mode=offline"], {}, r"--log-param wandb.mode=\.\.\.: expected NAME.KEY=VALUE for "
                                                    r"a chosen logger \(none is chosen; add --log NAME\)"),
    ],
)
def test_bad_logger_choices_are_one_line_and_exit_2(tmp_path, capsys, args, changes, message):
    suite = write_suite(tmp_path, **changes)
    assert main(["run", str(suite), "--dry-run", "--runs", str(tmp_path / "r"), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdbench: error: ") and re.search(message, lines[0]), lines


@pytest.mark.parametrize(("name", "module"), [("tensorboard", "tensorboard"), ("wandb", "wandb"),
                                              ("mlflow", "mlflow")])
def test_a_missing_extra_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were not installed
    assert main(["run", str(write_suite(tmp_path)), "--dry-run", "--runs", str(tmp_path / "r"), "--log", name]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"kdbench: error: logger {name!r} needs {module}: pip install 'kdbench[{name}]'"]


def test_a_failing_logger_changes_no_number(tmp_path):
    (tmp_path / "trackers.py").write_text(textwrap.dedent(LOGGERS_PLUGIN))
    numbers = []
    for name, args in (("plain", []), ("logged", ["--log", "broken", "--log", "notes"])):
        assert main(["run", str(write_suite(tmp_path, pairs=[{"student": "resnet8"}], methods=["ce"])), "--quiet",
                     "--threads", "1", "--runs", str(tmp_path / name), "--results", str(tmp_path / "none"),
                     "--plugin", str(tmp_path / "trackers.py"), *args]) == 0
        record = stored(tmp_path / name)
        numbers.append((record["key"], [{k: v for k, v in m.items() if k not in ("epoch_time_s", "train_images_per_s")}
                                        for m in record["metrics"]]))
    assert numbers[0] == numbers[1]


class Recorder:
    """A logger that notes its calls and fails in the ones it is told to."""

    def __init__(self, calls: list, fail_in: str = "") -> None:
        self.calls, self.fail_in = calls, fail_in

    def __getattr__(self, method: str):
        def call(*args):
            self.calls.append(method)
            if method == self.fail_in:
                raise ConnectionError("tracking server is down")
        return call


def test_the_guard_drops_a_failing_logger_and_logs_resumed_epochs_at_finish():
    from kdbench.contracts import RunInfo
    from kdbench.run.loggers import RunLoggers
    from kdbench.store.records import EpochRecord
    from kdbench.train.outcome import EpochMetrics

    info = RunInfo(kind="run", suite="s", label="kd", pair="a → b", seed=0, key="k", method="kd", student="b",
                   teacher="a", dataset="digits", revision=False, selection=True, spec={"seed": 0})
    healthy, failing = [], []
    logs = RunLoggers([("ok", Recorder(healthy)), ("down", Recorder(failing, fail_in="start"))], info)
    with pytest.warns(UserWarning, match=r"logger 'down' failed in start\(\) for kd a → b seed 0 \(ConnectionError"):
        logs.start()
    assert logs.names == ["ok"] and failing == ["start", "close"]  # dropped, and released
    epoch2 = EpochMetrics(epoch=2, lr=0.1, train_loss=1.0, train_top1=50.0, test_top1=40.0, epoch_time_s=1.0,
                          train_images_per_s=10.0, losses={"kd": 0.5})
    logs.epoch(epoch2)  # epoch 1 ran in an earlier process, before a resume

    class Record(pydantic.BaseModel):
        metrics: list[EpochRecord]
        best_top1: float

    logs.finish(Record(metrics=[EpochRecord.model_validate({**epoch2.as_dict(), "epoch": 1}),
                                EpochRecord.model_validate(epoch2.as_dict())], best_top1=40.0))
    logs.close()
    assert healthy == ["start", "epoch", "epoch", "finish", "close"]
    assert logs.names == []


def test_teacher_train_logs_the_teacher_in_its_own_group(tmp_path, monkeypatch):
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    runs = tmp_path / "runs"
    assert main(["teacher", "train", str(write_suite(tmp_path)), "--runs", str(runs), "--quiet", "--threads", "1",
                 "--log", "tensorboard"]) == 0
    assert [p.name for p in (runs / "tensorboard" / "logs").iterdir()] == ["teacher__resnet8__seed0"]
