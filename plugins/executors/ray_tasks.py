"""Ray: one task per job on a local Ray instance or an existing cluster (``address``). On GPUs a task asks
for ``1 / runs_per_device`` of one, so Ray packs small runs several to a GPU, or for ``gpus_per_run`` whole
GPUs, which a run trained on several processes (``recipe.devices``, ``--nproc``) spreads its ranks over.

Unless ``--quiet``, a task's progress lines (with an ETA) go to its Ray worker's log (``ray logs``, under
``/tmp/ray/session_latest/logs/``), not to the command's output: Ray would fold alike lines of different
workers into one ("[repeated 2x across cluster]"), which progress lines of different runs always are."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kdbench.contracts import Job, hookimpl, require
from kdbench.errors import KdbenchError

_PROCESS: dict[Any, Any] = {}  # in a Ray worker process: its kdbench worker per factory (Ray reuses processes)


def _execute(make_worker: Callable[..., Any], job: Job, threads: int) -> Any:
    import ray

    if make_worker not in _PROCESS:
        device = "cuda" if ray.get_gpu_ids() else "cpu"
        _PROCESS[make_worker] = make_worker(device=device, threads=threads)  # progress lines unless --quiet
    return job.execute(_PROCESS[make_worker])


class RayExecutor:
    """Ray tasks; ``address`` joins a running cluster, otherwise a local instance is started for the suite."""

    def __init__(self, address: str | None = None, runs_per_device: int = 1, cpus_per_run: float = 1.0,
                 threads: int | None = None, num_cpus: int | None = None, gpus_per_run: int = 1) -> None:
        self.ray = require("ray", "ray")
        if runs_per_device < 1 or cpus_per_run <= 0 or gpus_per_run < 1:
            raise KdbenchError("ray: runs_per_device and gpus_per_run must be at least 1 and cpus_per_run positive")
        if gpus_per_run > 1 and runs_per_device > 1:
            raise KdbenchError("ray: a run on several GPUs (gpus_per_run > 1) cannot share them (runs_per_device 1)")
        self.gpus_per_run = gpus_per_run
        self.address, self.runs_per_device, self.cpus_per_run = address, runs_per_device, cpus_per_run
        self.threads = threads or max(1, int(cpus_per_run))
        self.num_cpus = num_cpus

    def gpu_share(self) -> float:
        """GPUs one task asks Ray for: whole ones for a multi-GPU run, else a slice of one."""
        return float(self.gpus_per_run) if self.gpus_per_run > 1 else 1.0 / self.runs_per_device

    def run(self, jobs: Sequence[Job], make_worker: Callable[..., Any]) -> Iterator[Any]:
        if not jobs:
            return
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(_execute).options(num_cpus=self.cpus_per_run, max_retries=0,
                                                num_gpus=self.gpu_share() if gpus else 0)
            pending = {task.remote(make_worker, job, self.threads): job for job in jobs}
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready)
                try:
                    yield ray.get(ready)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, KdbenchError):
                        raise KdbenchError(str(cause)) from None
                    raise
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError, ray.exceptions.NodeDiedError,
                        ray.exceptions.ObjectLostError) as exc:
                    yield job.crashed(f"the Ray worker died while running it ({type(exc).__name__})")
        finally:
            if started:
                ray.shutdown()


@hookimpl
def kdbench_register_executors(register: Callable[..., None]) -> None:
    register("ray", RayExecutor)
