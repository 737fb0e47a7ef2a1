"""SLURM through submitit: one job array per wave, requeued on preemption or timeout, resumed from the run's
epoch checkpoint. ``cluster: local`` runs the same code path as local processes (what the tests use).

Each job of the array runs one kdbench job in a fresh process. submitit's checkpointing requeues a job
that SLURM preempts or that reaches its time limit; the run then resumes from its epoch checkpoint in the
run store (``resume.pt``), so at most ``checkpoint_every`` epochs are trained twice. Logs go under the
run store (``<runs>/submitit/``); unless ``--quiet``, a job's log holds its progress lines with an ETA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from kdbench.contracts import Job, hookimpl, require
from kdbench.errors import KdbenchError

_USER_ERROR = "kdbench-user-error"


def _task_class(submitit: Any) -> type:
    class JobTask(submitit.helpers.Checkpointable):  # type: ignore[misc, unused-ignore]  # submitit: untyped (Any)
        """One kdbench job as a requeueable submitit function (its state is the job itself)."""

        def __init__(self, make_worker: Callable[..., Any], job: Job) -> None:
            self.make_worker, self.job = make_worker, job

        def __call__(self) -> Any:
            try:
                return self.job.execute(self.make_worker())  # progress lines into its log, unless --quiet
            except KdbenchError as exc:  # a user's error: the coordinator stops the suite with its line
                return (_USER_ERROR, str(exc))

    return JobTask


class SlurmExecutor:
    """SLURM job arrays through submitit; ``cluster: local`` for local processes (testing, a workstation)."""

    def __init__(self, runs_root: str = "runs", partition: str | None = None, gpus_per_job: int = 1,
                 cpus_per_job: int = 8, mem_gb: float | None = None, timeout_min: int = 24 * 60,
                 array_parallelism: int = 32, slurm_params: dict[str, Any] | None = None,
                 cluster: Literal["auto", "slurm", "local"] = "auto", folder: str | None = None) -> None:
        self.submitit = require("submitit", "slurm")
        if min(cpus_per_job, timeout_min, array_parallelism) < 1 or gpus_per_job < 0:
            raise KdbenchError("submitit: cpus_per_job, timeout_min and array_parallelism must be at least 1, "
                               "gpus_per_job at least 0")
        self.folder = Path(folder) if folder else Path(runs_root) / "submitit"
        self.cluster = None if cluster == "auto" else cluster
        self.parameters: dict[str, Any] = {
            "timeout_min": timeout_min, "gpus_per_node": gpus_per_job, "cpus_per_task": cpus_per_job,
            "slurm_array_parallelism": array_parallelism, "name": "kdbench",
            **({"slurm_partition": partition} if partition else {}), **({"mem_gb": mem_gb} if mem_gb else {}),
            **{f"slurm_{k}": v for k, v in (slurm_params or {}).items()},
        }

    def run(self, jobs: Sequence[Job], make_worker: Callable[..., Any]) -> Iterator[Any]:
        if not jobs:
            return
        executor = self.submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(**self.parameters)
        task = _task_class(self.submitit)
        with executor.batch():  # one array job for the wave
            submitted = [executor.submit(task(make_worker, job)) for job in jobs]
        by_id = {id(s): job for s, job in zip(submitted, jobs, strict=True)}
        try:
            for done in self.submitit.helpers.as_completed(submitted, poll_frequency=0.5):
                job = by_id[id(done)]
                try:
                    outcome = done.result()
                except (self.submitit.core.utils.FailedJobError, self.submitit.core.utils.UncompletedJobError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    yield job.crashed(f"submitit job {done.job_id} did not finish: {first}")
                    continue
                if isinstance(outcome, tuple) and outcome and outcome[0] == _USER_ERROR:
                    raise KdbenchError(outcome[1])
                yield outcome
        finally:
            for job in submitted:
                if not job.done():
                    job.cancel(check=False)


@hookimpl
def kdbench_register_executors(register: Callable[..., None]) -> None:
    register("submitit", SlurmExecutor)
