"""One run on several processes (DDP, gloo on CPU) through the CLI: the same numbers as one process with the
same global batch, only rank 0 writing, resume from rank 0's checkpoint, and the rank placement rules."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from kdbench.cli import main
from kdbench.errors import KdbenchError
from kdbench.run.distributed import placement
from kdbench.run.doctor.sandbox import PLAIN_NET

# A model without BatchNorm (the doctor's, a plugin file of kdbench): with it, DDP computes exactly the
# one-process gradients (the mean over the global batch, summed in another order), so the two agree to float
# rounding. BatchNorm's per-rank batch statistics are the one legitimate difference; the second test bounds it.
PLAIN = "doctor_plain_net"


def write_suite(tmp_path: Path, student: str, methods: list, epochs: int = 2, num_train: int = 120,
                batch_size: int = 32) -> Path:
    suite = {
        "name": "ddp", "plugins": [str(PLAIN_NET)],
        "dataset": {"name": "synthetic", "params": {"num_train": num_train, "num_test": 60, "image_size": 8,
                                                    "val_fraction": 0.1}},
        "recipe": {"epochs": epochs, "batch_size": batch_size, "lr": 0.05, "milestones": [1]},
        "teacher_recipe": {"epochs": 1, "milestones": []},
        "seeds": [0],
        "pairs": [{"teacher": PLAIN, "student": student}],
        "methods": methods,
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run(suite: Path, runs: Path, *args: str) -> int:
    return main(["run", str(suite), "--quiet", "--runs", str(runs), "--results", str(runs / "none"), "--threads", "2",
                 *args])


def records(runs: Path) -> dict[str, dict]:
    return {r["label"]: r for r in (json.loads(p.read_text()) for p in (runs / "raw" / "ddp").glob("*/record.json"))}


def epochs_without_timing(record: dict) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in ("epoch_time_s", "train_images_per_s")} for m in record["metrics"]]


# 113 samples less a 10% validation hold-out leave 101 to train on: batches of 25 split unevenly over 2 ranks
# (13 + 12) and 3 ranks (9 + 8 + 8), and the last batch of 1 leaves every rank but rank 0 without a sample.
UNEVEN = {"num_train": 113, "batch_size": 25}
METHODS = [{"name": "kd", "params": {"T": 2.0}}, "vid", {"name": "kd", "revision": "paper"}]


@pytest.mark.parametrize(("world", "methods"), [(2, METHODS), (3, METHODS[1:])])
def test_gloo_processes_give_one_process_numbers_on_uneven_batches(tmp_path, monkeypatch, world, methods):
    """Tolerance: 1e-4 on losses and a per-mille of accuracy (one sample in 60 is 1.7 points, so accuracies
    must be equal); the gradient sums differ from one process only in the order they are added. Every batch
    splits unevenly, the last one leaves ranks empty; KD+LR checks Eq. (11)'s subset means (KD's CE term is
    plain CE's, so CE alone is not run again). Three ranks run the two methods whose sums span ranks in most
    ways (VID's feature regressor, LR's subset means); every run of a suite starts its own process group, so
    each method costs a process start-up per rank."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = write_suite(tmp_path, PLAIN, methods, **UNEVEN)
    assert run(suite, tmp_path / "one") == 0
    assert run(suite, tmp_path / "many", "--nproc", str(world)) == 0
    one, many = records(tmp_path / "one"), records(tmp_path / "many")
    labels = {"kd", "vid", "kd+LR"} if world == 2 else {"vid", "kd+LR"}
    assert set(one) == set(many) == labels
    for label in one:
        assert many[label]["key"] == one[label]["key"]  # the device count is not part of the key
        assert many[label].get("processes") == world and "processes" not in one[label]
        for a, b in zip(epochs_without_timing(one[label]), epochs_without_timing(many[label]), strict=True):
            assert a.keys() == b.keys()
            for k in a:
                assert b[k] == pytest.approx(a[k], abs=1e-4), (label, k)


def test_batchnorm_students_stay_close_and_only_rank_zero_writes(tmp_path, monkeypatch):
    """resnet8 (BatchNorm): each rank normalises its half-batch with its own statistics, so the numbers
    differ from one process; bounded here at 1e-2 on the first-epoch training loss."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = write_suite(tmp_path, "resnet8", ["kd"], epochs=1)
    assert run(suite, tmp_path / "one") == 0
    assert run(suite, tmp_path / "two", "--nproc", "2") == 0
    (one,), (two,) = records(tmp_path / "one").values(), records(tmp_path / "two").values()
    assert two["metrics"][0]["train_loss"] == pytest.approx(one["metrics"][0]["train_loss"], abs=1e-2)
    run_dir = tmp_path / "two" / "raw" / "ddp" / two["key"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["record.json"]  # one record, no rank files


DIES_IN_EPOCH_3 = '''
import os
from pathlib import Path
from kdbench.contracts import DistillationMethod, LossTerms, cross_entropy_per_sample, hookimpl


class DiesInEpoch3(DistillationMethod):
    uses_teacher = False

    def __init__(self, marker: str = "") -> None:
        super().__init__()
        self.marker = marker

    def loss_terms(self, step):
        if step.epoch == 3 and not Path(self.marker).exists():
            Path(self.marker).write_text("killed")
            os._exit(9)  # a kill: no exception, no clean-up
        return LossTerms(sample={"ce": cross_entropy_per_sample(step.student_logits, step.targets)})


@hookimpl
def kdbench_register_methods(register):
    register("dies_in_epoch_3", DiesInEpoch3)
'''


def test_a_killed_ddp_run_resumes_from_rank_zeros_checkpoint(tmp_path, monkeypatch):
    """Killed in epoch 3 after rank 0 saved epoch 2: the next run resumes there and ends with the numbers of
    a run never killed (every epoch's batches are a function of the seed and the epoch)."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "dies.py").write_text(textwrap.dedent(DIES_IN_EPOCH_3))
    marker = tmp_path / "killed"
    suite = write_suite(tmp_path, PLAIN, [{"name": "dies_in_epoch_3", "params": {"marker": str(marker)}}],
                        epochs=4)
    data = yaml.safe_load(suite.read_text())
    suite.write_text(yaml.safe_dump({**data, "plugins": [str(PLAIN_NET), "dies.py"]}, sort_keys=False))
    args = ("--nproc", "2", "--checkpoint-every", "1")
    assert run(suite, tmp_path / "runs", *args) == 1  # the run failed
    (failure,) = (tmp_path / "runs" / "raw" / "ddp").glob("*/failure.json")
    state = torch.load(failure.parent / "resume.pt", weights_only=True)
    assert state["epoch"] == 2
    assert run(suite, tmp_path / "runs", *args) == 0
    (resumed,) = records(tmp_path / "runs").values()
    marker.write_text("killed")  # the reference run is not killed
    assert run(suite, tmp_path / "whole", "--nproc", "2") == 0
    (whole,) = records(tmp_path / "whole").values()
    assert [m["epoch"] for m in resumed["metrics"]] == [1, 2, 3, 4]
    for a, b in zip(epochs_without_timing(resumed), epochs_without_timing(whole), strict=True):
        assert a == pytest.approx(b, abs=1e-6)


def test_placement_gives_each_rank_its_gpu_or_its_share_of_the_cores():
    assert placement("cpu", 1, 2, 8).device == "cpu" and placement("cpu", 1, 2, 8).threads == 4
    assert placement("cpu", 0, 4, 2).threads == 1 and placement("cpu", 0, 2, 2).backend == "gloo"
    group = placement("cuda:4,5", 1, 2, None)
    assert group.device == "cuda:5" and group.backend == "nccl"
    with pytest.raises(KdbenchError, match="needs 3 GPUs, but it was given 2"):
        placement("cuda:0,1", 0, 3, None)


def test_executors_give_a_run_several_gpus():
    from kdbench_plugins.executors.pool import PoolExecutor
    from kdbench_plugins.executors.ray_tasks import RayExecutor

    pool = PoolExecutor(devices_per_run=2)
    assert pool.gpu_groups([0, 1, 2, 3, 4]) == ["cuda:0,1", "cuda:2,3"]  # GPU 4 alone cannot hold a run
    with pytest.raises(KdbenchError, match="needs at least 4 GPUs"):
        PoolExecutor(devices_per_run=4).gpu_groups([0, 1])
    assert RayExecutor(gpus_per_run=4).gpu_share() == 4.0 and RayExecutor(runs_per_device=4).gpu_share() == 0.25
    with pytest.raises(KdbenchError, match="cannot share them"):
        RayExecutor(gpus_per_run=2, runs_per_device=2)


def test_a_pool_worker_trains_a_ddp_run(tmp_path, monkeypatch):
    """The pool's worker process spawns the run's ranks (gloo on CPU) and writes the record as rank 0's."""
    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = write_suite(tmp_path, PLAIN, ["ce"], epochs=1)
    assert run(suite, tmp_path / "one", "--nproc", "2") == 0
    assert run(suite, tmp_path / "pool", "--nproc", "2", "--executor", "pool", "--param", "devices=1") == 0
    (serial,), (pooled,) = records(tmp_path / "one").values(), records(tmp_path / "pool").values()
    assert pooled["processes"] == 2 and epochs_without_timing(pooled) == epochs_without_timing(serial)


def test_a_ddp_runs_epochs_reach_its_logger_with_the_record(tmp_path, monkeypatch):
    """The ranks train; the owning worker's logger gets every epoch from rank 0's outcome, with its numbers."""
    from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    monkeypatch.setenv("KDBENCH_HOME", str(tmp_path / "home"))
    suite = write_suite(tmp_path, PLAIN, ["ce"], epochs=2)
    assert run(suite, tmp_path / "runs", "--nproc", "2", "--log", "tensorboard") == 0
    (record,) = records(tmp_path / "runs").values()
    (folder,) = [p for p in (tmp_path / "runs" / "tensorboard" / "ddp").iterdir() if p.name.startswith("ce__")]
    events = EventAccumulator(str(folder), size_guidance={TENSORS: 0})
    events.Reload()
    logged = {e.step: float(make_ndarray(e.tensor_proto)) for e in events.Tensors("test_top1")}
    assert logged == {m["epoch"]: m["test_top1"] for m in record["metrics"]}
