"""One run over several processes (DDP): spawn the ranks, give each its device, bring back rank 0's record.

The worker that owns a run prepares everything the ranks only read — the teacher (trained and stored if
needed), the Data Selection scores, a teacher-output table — so that no two ranks compute the same thing.
Then it starts ``world`` processes (spawn); each rebuilds a worker from the same plain options, joins the
process group (NCCL on GPUs, gloo on CPU) through a rendezvous file, and trains its shard of every global
batch. Rank 0 alone saves resume checkpoints and writes the outcome (as plain data, read back with
``weights_only=True``), which the owning worker turns into the run's record; a killed DDP run resumes from
rank 0's last checkpoint like any other run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kdbench.errors import KdbenchError
from kdbench.plan.spec import RunSpec
from kdbench.run.options import RunOptions
from kdbench.run.teacher_outputs import ServedLogits
from kdbench.store import TeacherCacheRecord
from kdbench.store.files import plain
from kdbench.train.distributed import Shard
from kdbench.train.outcome import EpochMetrics, TrainOutcome

RESULT_FILE = "rank0.pt"


@dataclass(frozen=True)
class RankPlacement:
    """Where one rank runs: its device, its torch threads, and the process-group backend."""

    device: str
    threads: int | None
    backend: str


def placement(device: str, rank: int, world: int, threads: int | None) -> RankPlacement:
    """``cuda`` (or ``cuda:0,1,...``, a group an executor gave the run) puts rank r on the r-th GPU; on a CPU
    the ranks share the cores (the worker's threads divided among them)."""
    if device.startswith("cuda"):
        given = device.partition(":")[2]
        ids = [int(i) for i in given.split(",")] if given else list(range(torch.cuda.device_count()))
        if len(ids) < world:
            raise KdbenchError(f"a run on {world} processes needs {world} GPUs, but it was given {len(ids)} ({device})")
        return RankPlacement(f"cuda:{ids[rank]}", threads, "nccl")
    cores = threads or os.cpu_count() or 1
    return RankPlacement("cpu", max(1, cores // world), "gloo")


def _rank_main(rank: int, make_worker: Callable[..., Any], options: RunOptions, spec: RunSpec, world: int,
               rendezvous: str) -> None:
    """One rank: join the group, train its shard with a worker of its own, rank 0 saves the outcome."""
    import torch.distributed as dist

    where = placement(options.device, rank, world, options.threads)
    if where.device.startswith("cuda"):
        torch.cuda.set_device(torch.device(where.device))
    dist.init_process_group(where.backend, init_method=f"file://{rendezvous}/group", rank=rank, world_size=world)
    try:
        worker = make_worker(device=where.device, threads=where.threads, quiet=options.quiet or rank > 0)
        outcome, served = worker.train_shard(spec, Shard(rank, world))
        if rank == 0:
            torch.save(result_data(outcome, served), Path(rendezvous) / RESULT_FILE)
    finally:
        dist.destroy_process_group()


def train_on_ranks(make_worker: Callable[..., Any], options: RunOptions, spec: RunSpec,
                   world: int) -> tuple[TrainOutcome, ServedLogits]:
    """Train ``spec`` on ``world`` processes and return rank 0's ``(TrainOutcome, ServedLogits)``.
    ``make_worker(device=, threads=, quiet=)`` builds each rank's worker (a picklable ``WorkerFactory``).

    A rank that raises stops the others; its error is raised here, as one process's would be."""
    from torch.multiprocessing.spawn import ProcessRaisedException, start_processes

    with tempfile.TemporaryDirectory(prefix="kdbench-ddp-") as rendezvous:
        try:
            start_processes(  # type: ignore[no-untyped-call, unused-ignore]  # torch leaves it unannotated
                _rank_main, args=(make_worker, options, spec, world, rendezvous), nprocs=world, join=True,
                start_method="spawn")
        except ProcessRaisedException as exc:  # the rank's traceback is in the message
            last = str(exc).strip().splitlines()[-1]
            if last.startswith("kdbench.errors.KdbenchError: "):  # a user error stays one line and exit 2
                raise KdbenchError(last.partition(": ")[2]) from None
            raise RuntimeError(f"a rank of the {world}-process run failed: {last}") from exc
        return from_result_data(torch.load(Path(rendezvous) / RESULT_FILE, weights_only=True))


def result_data(outcome: TrainOutcome, served: ServedLogits) -> dict[str, Any]:
    """Rank 0's outcome and teacher-logit record as plain data (dicts, lists, numbers, strings): the file is
    read back with ``torch.load(weights_only=True)``, which builds no other object."""
    data: dict[str, Any] = plain({
        "outcome": {"epochs": [m.as_dict() for m in outcome.epochs], "wall_time_s": float(outcome.wall_time_s),
                    "train_images_per_s": float(outcome.train_images_per_s)},
        "served": served.record.model_dump(mode="json") if served.record is not None else None,
    })
    return data


def from_result_data(data: dict[str, Any]) -> tuple[TrainOutcome, ServedLogits]:
    """The ``(TrainOutcome, ServedLogits)`` of :func:`result_data` (the logits' source stays with the rank)."""
    outcome = data["outcome"]
    epochs = [EpochMetrics.from_dict(m) for m in outcome["epochs"]]
    record = TeacherCacheRecord.model_validate(data["served"]) if data["served"] is not None else None
    return TrainOutcome(epochs, outcome["wall_time_s"], outcome["train_images_per_s"]), ServedLogits(None, record)
