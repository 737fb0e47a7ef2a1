"""Local processes: the runs of a suite in parallel on this machine's GPUs, or on its CPU cores.

Each slot is its own single-process pool (``concurrent.futures`` with the spawn start method), pinned to
a device and a number of torch threads. A job whose process dies (an exception outside the run, an
out-of-memory kill, a signal) is reported as crashed; only that slot's pool is replaced and the other
slots go on. A GPU holds ``runs_per_device`` slots, so several small CIFAR runs share one GPU; with
``devices_per_run`` > 1 a slot holds a group of GPUs instead (``cuda:0,1``), over which a run trained on
several processes (``recipe.devices``, ``--nproc``) spreads its ranks.

The workers write to the command's standard error: unless ``--quiet``, each shows its phases as plain
progress lines with an ETA (never a bar: the processes share the terminal), each line written whole.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from kdbench.contracts import Job, hookimpl
from kdbench.errors import KdbenchError

GIB = 2**30
MEMORY_PER_RUN = 4 * GIB  # the default packing: one run per 4 GiB of free GPU memory, at most 8 a GPU
MAX_RUNS_PER_DEVICE = 8

_PROCESS: dict[str, Any] = {}  # in a pool's process: the worker its initializer made (one per process)


def _start(make_worker: Callable[..., Any], device: str, threads: int) -> None:
    if device.startswith("cuda:"):
        import torch

        torch.cuda.set_device(int(device.split(":")[1].split(",")[0]))  # a group's first GPU
    _PROCESS["worker"] = make_worker(device=device, threads=threads)  # progress lines unless --quiet


def _execute(job: Job) -> Any:
    return job.execute(_PROCESS["worker"])


class PoolExecutor:
    """Runs in parallel in local processes: ``devices`` GPU ids (or a count), on CPU the number of workers."""

    def __init__(self, devices: int | list[int] | None = None, runs_per_device: int | None = None,
                 threads: int | None = None, devices_per_run: int = 1) -> None:
        if isinstance(devices, int) and devices < 1 or isinstance(devices, list) and not devices:
            raise KdbenchError(f"pool: devices must be a positive count or a list of GPU ids, got {devices!r}")
        if runs_per_device is not None and runs_per_device < 1:
            raise KdbenchError(f"pool: runs_per_device must be at least 1, got {runs_per_device}")
        if threads is not None and threads < 1:
            raise KdbenchError(f"pool: threads must be at least 1, got {threads}")
        if devices_per_run < 1:
            raise KdbenchError(f"pool: devices_per_run must be at least 1, got {devices_per_run}")
        self.devices, self.runs_per_device, self.threads = devices, runs_per_device, threads
        self.devices_per_run = devices_per_run

    def slots(self) -> list[tuple[str, int]]:
        """(device, torch threads) of every worker process."""
        import torch

        cores = os.cpu_count() or 1
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            ids = list(range(min(self.devices, count))) if isinstance(self.devices, int) else (
                self.devices if self.devices is not None else list(range(count)))
            if any(not 0 <= i < count for i in ids):
                raise KdbenchError(f"pool: GPU ids {ids} asked for, but torch sees {count} GPU(s)")
            if self.devices_per_run > 1:
                slots = self.gpu_groups(ids)
            else:
                slots = [f"cuda:{i}" for i in ids for _ in range(self.runs_per_device or self._packing(i))]
        else:
            workers = self.devices if isinstance(self.devices, int) else len(self.devices or []) or cores
            slots = ["cpu"] * workers
        return [(device, self.threads or max(1, cores // len(slots))) for device in slots]

    def gpu_groups(self, ids: list[int]) -> list[str]:
        """One slot per ``devices_per_run`` GPUs: ``cuda:0,1``, ``cuda:2,3``, ... (left-over GPUs stay idle)."""
        k = self.devices_per_run
        if len(ids) < k:
            raise KdbenchError(f"pool: devices_per_run {k} needs at least {k} GPUs, got {ids}")
        return ["cuda:" + ",".join(str(i) for i in ids[g:g + k]) for g in range(0, len(ids) - k + 1, k)]

    @staticmethod
    def _packing(gpu: int) -> int:
        import torch

        free, _ = torch.cuda.mem_get_info(gpu)
        return max(1, min(MAX_RUNS_PER_DEVICE, free // MEMORY_PER_RUN))

    def run(self, jobs: Sequence[Job], make_worker: Callable[..., Any]) -> Iterator[Any]:
        if not jobs:
            return
        slots = self.slots()[: len(jobs)]
        context = multiprocessing.get_context("spawn")

        def pool(slot: int) -> cf.ProcessPoolExecutor:
            device, threads = slots[slot]
            return cf.ProcessPoolExecutor(1, mp_context=context, initializer=_start,
                                          initargs=(make_worker, device, threads))

        pools = {slot: pool(slot) for slot in range(len(slots))}
        waiting = deque(jobs)
        running: dict[cf.Future[Any], tuple[int, Job]] = {}
        try:
            while waiting or running:
                for slot in [s for s in pools if s not in {s_ for s_, _ in running.values()}]:
                    if waiting:
                        job = waiting.popleft()
                        running[pools[slot].submit(_execute, job)] = (slot, job)
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    slot, job = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        pools[slot].shutdown(wait=False, cancel_futures=True)
                        pools[slot] = pool(slot)
                        yield job.crashed(f"the worker process on {slots[slot][0]} died while running it")
        finally:
            for executor in pools.values():
                for process in list(getattr(executor, "_processes", {}).values()):
                    process.terminate()  # an interrupted suite leaves no worker behind
                executor.shutdown(wait=False, cancel_futures=True)


@hookimpl
def kdbench_register_executors(register: Callable[..., None]) -> None:
    register("pool", PoolExecutor)
