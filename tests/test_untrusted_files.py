"""Files kdbench reads back (resume checkpoints, score caches, a DDP run's result) are loaded as tensors and
plain data only: a planted pickle never runs, it is reported in one line and the work goes on without it."""

from __future__ import annotations

import io
import json
import math
import pathlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from kdbench.cli import main
from kdbench.errors import KdbenchWarning
from kdbench.plan import expand, load_suite
from kdbench.run.distributed import from_result_data, result_data
from kdbench.run.teacher_outputs import ServedLogits
from kdbench.store import ResumeFile, RunStore, ScoreCache, StoredScores, TeacherCacheRecord, scores_key
from kdbench.store.files import plain
from kdbench.train.outcome import EpochMetrics, TrainOutcome


class Planted:
    """Unpickling this creates ``marker``: what a colleague's planted file could do in our process."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def plant(path: Path, marker: Path, how: str = "torch") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"epoch": 1, "values": Planted(marker)}
    if how == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    assert not marker.exists()


def write_suite(tmp_path: Path, methods: list, epochs: int = 2) -> Path:
    suite = {
        "name": "untrusted",
        "dataset": {"name": "synthetic", "params": {"num_train": 96, "num_test": 40, "image_size": 8}},
        "recipe": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "milestones": []},
        "teacher_recipe": {"epochs": 1, "milestones": []},
        "seeds": [0],
        "pairs": [{"teacher": "resnet8", "student": "resnet8"}],
        "methods": methods,
    }
    path = tmp_path / "untrusted.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run(suite: Path, runs: Path, *args: str) -> int:
    return main(["run", str(suite), "--quiet", "--runs", str(runs), "--results", str(runs / "none"), *args])


def records(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((runs / "raw" / "untrusted").glob("*/record.json"))]


def warning_lines(err: str, about: Path) -> list[str]:
    """The lines of stderr that warn of anything; each must name ``about``."""
    lines = [line for line in err.splitlines() if "warning" in line.lower()]
    assert all(str(about) in line for line in lines), lines
    return lines


# --- resume checkpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_a_planted_resume_file_is_never_unpickled_and_the_run_starts_over(tmp_path, capsys, registry, how):
    suite = write_suite(tmp_path, ["ce"])
    (spec,) = expand(load_suite(suite), registry).runs
    runs, marker = tmp_path / "runs", tmp_path / "pwned"
    resume = RunStore(runs).resume_file(spec).path
    plant(resume, marker, how)
    capsys.readouterr()
    code = run(suite, runs, "--checkpoint-every", "1")
    assert not marker.exists()  # never unpickled
    assert code == 0
    (record,) = records(runs)
    assert [m["epoch"] for m in record["metrics"]] == [1, 2]  # trained from epoch 1, not resumed
    (line,) = warning_lines(capsys.readouterr().err, resume)
    assert line.startswith("kdbench: warning: ") and "resume checkpoint not loaded" in line
    assert "the run starts again from epoch 1" in line
    assert not resume.exists()  # replaced by the run's own checkpoint, removed when it finished


def test_a_real_checkpoint_still_resumes_through_the_cli(tmp_path, capsys, monkeypatch, registry):
    suite = write_suite(tmp_path, ["ce"], epochs=3)
    (spec,) = expand(load_suite(suite), registry).runs
    runs = tmp_path / "runs"
    resume = RunStore(runs).resume_file(spec).path
    real_save, real_load, loaded = ResumeFile.save, ResumeFile.load, []

    def save_then_interrupt(self, state):
        real_save(self, state)
        raise KeyboardInterrupt

    def load_and_note(self, device):
        state = real_load(self, device)
        loaded.append(state)
        return state

    monkeypatch.setattr(ResumeFile, "save", save_then_interrupt)
    assert run(suite, runs, "--checkpoint-every", "1") == 130
    saved = torch.load(resume, weights_only=True)  # what kdbench writes loads as tensors and plain data
    assert saved["epoch"] == 1 and len(saved["epochs"]) == 1
    monkeypatch.setattr(ResumeFile, "save", real_save)
    monkeypatch.setattr(ResumeFile, "load", load_and_note)
    capsys.readouterr()
    assert run(suite, runs, "--checkpoint-every", "1") == 0
    assert "warning" not in capsys.readouterr().err
    assert [s["epoch"] for s in loaded] == [1]
    (record,) = records(runs)
    assert [m["epoch"] for m in record["metrics"]] == [1, 2, 3]
    assert record["metrics"][0]["epoch_time_s"] == saved["epochs"][0]["epoch_time_s"]  # epoch 1 came from the file


def test_resume_file_loads_only_tensors_and_plain_data(tmp_path):
    path, marker = tmp_path / "resume.pt", tmp_path / "pwned"
    plant(path, marker)
    with pytest.warns(KdbenchWarning, match="resume checkpoint not loaded \\(it holds a pickled object") as caught:
        loaded = ResumeFile(path).load("cpu")
    assert not marker.exists() and loaded is None and len(caught) == 1
    for content in (b"", b"not a torch file\n", b"PK\x03\x04truncated"):
        path.write_bytes(content)
        with pytest.warns(KdbenchWarning, match="resume checkpoint not loaded \\(not a (readable )?torch file"):
            assert ResumeFile(path).load("cpu") is None
    torch.save([1, 2], path)
    with pytest.warns(KdbenchWarning, match="it holds a list, not a resume state"):
        assert ResumeFile(path).load("cpu") is None


def test_resume_state_is_saved_as_plain_data(tmp_path):
    """numpy scalars or paths that slipped into the state would make the file unloadable: they are made
    plain on save, and a state dict keeps its class and version metadata."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    state = {"epoch": np.int64(1), "student": model.state_dict(), "where": Path("/x"),
             "epochs": [{"lr": np.float64(0.1), "train_top1": np.float32(50.0)}], "wall_time_s": 1.5}
    ResumeFile(tmp_path / "resume.pt").save(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = ResumeFile(tmp_path / "resume.pt").load("cpu")
    assert loaded["epoch"] == 1 and type(loaded["epoch"]) is int and loaded["where"] == "/x"
    assert loaded["epochs"] == [{"lr": 0.1, "train_top1": 50.0}]
    assert loaded["student"]._metadata == model.state_dict()._metadata
    sd = model.state_dict()
    assert plain(sd) is sd  # nothing to change: the same object


# --- score caches -------------------------------------------------------------------------------------------


def scores(key: str, info: dict) -> StoredScores:
    return StoredScores(values=torch.arange(4, dtype=torch.float64), info=info, higher_to_teacher=np.bool_(True),
                        labels=torch.tensor([0, 1, 0, 1]), teacher_correct=torch.tensor([True, False, True, True]),
                        seconds=np.float64(0.25), key=key)


def test_score_cache_loads_only_tensors_and_plain_data(tmp_path):
    cache, marker = ScoreCache(tmp_path), tmp_path / "pwned"
    plant(cache.path("k"), marker)
    with pytest.warns(KdbenchWarning, match="score cache not loaded \\(it holds a pickled object") as caught:
        first = cache.load("k")
        assert not marker.exists() and first is None
        assert cache.load("k") is None  # read again (the scorer does, under its lock): still one line
    assert len(caught) == 1
    info = {"k": np.int64(3), "damping": np.float64(0.5), "where": Path("/data"), "pair": (1, 2)}
    cache.save(scores("k", info))  # the new scores replace the planted file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cache.load("k")
    assert got.info == {"k": 3, "damping": 0.5, "where": "/data", "pair": [1, 2]}  # as the record keeps it
    assert got.higher_to_teacher is True and got.seconds == 0.25 and got.key == "k"
    assert torch.equal(got.values, torch.arange(4, dtype=torch.float64))
    torch.save({"values": torch.zeros(2)}, cache.path("other"))
    with pytest.warns(KdbenchWarning, match="not a score cache entry"):
        assert cache.load("other") is None


def test_a_planted_score_cache_is_never_unpickled_and_the_scores_are_rebuilt(tmp_path, capsys, registry,
                                                                                isolated_home):
    suite = write_suite(tmp_path, [{"name": "kd", "selection": {"estimator": "margin", "fraction": 0.8}}], epochs=1)
    (spec,) = expand(load_suite(suite), registry).runs
    path = ScoreCache(isolated_home).path(scores_key(spec.teacher, spec.selection.estimator))
    marker = tmp_path / "pwned"
    plant(path, marker)
    capsys.readouterr()
    code = run(suite, tmp_path / "runs")
    assert not marker.exists()  # never unpickled
    assert code == 0
    (line,) = warning_lines(capsys.readouterr().err, path)
    assert line.startswith("kdbench: warning: ") and "score cache not loaded" in line
    rebuilt = torch.load(path, weights_only=True)  # the run's scores replaced the planted file
    assert rebuilt["values"].shape == (96,) and rebuilt["higher_to_teacher"] in (True, False)
    (record,) = records(tmp_path / "runs")
    assert record["selection"]["samples"] == 96


# --- a DDP run's result -------------------------------------------------------------------------------------


def test_a_ddp_result_is_written_as_plain_data_and_rebuilt():
    epochs = [EpochMetrics(epoch=1, lr=np.float64(0.1), train_loss=2.5, train_top1=40.0, test_top1=np.float32(45.0),
                           epoch_time_s=1.0, train_images_per_s=math.nan, losses={"ce": 2.5}, test_top5=90.0),
              EpochMetrics(epoch=2, lr=0.01, train_loss=2.0, train_top1=50.0, test_top1=55.0, epoch_time_s=1.0,
                           train_images_per_s=100.0, val_top1=52.0, unreadable=0)]
    outcome = TrainOutcome(epochs, 2.0, 100.0)
    for record in (None, TeacherCacheRecord(used=True, reason="on", key="abc", dtype="float16", views=3,
                                            max_abs_error=0.001)):
        buffer = io.BytesIO()
        torch.save(result_data(outcome, ServedLogits(None, record)), buffer)
        buffer.seek(0)
        got_outcome, served = from_result_data(torch.load(buffer, weights_only=True))
        assert served.source is None and served.record == record
        assert got_outcome.wall_time_s == 2.0 and got_outcome.train_images_per_s == 100.0
        first, second = (m.as_dict() for m in got_outcome.epochs)
        assert math.isnan(first.pop("train_images_per_s"))
        assert first == {k: v for k, v in epochs[0].as_dict().items() if k != "train_images_per_s"}
        assert second == epochs[1].as_dict() and all(type(v) in (int, float) for v in second.values())
        assert got_outcome.epochs[1].val_top1 == 52.0 and got_outcome.epochs[0].losses == {"ce": 2.5}
