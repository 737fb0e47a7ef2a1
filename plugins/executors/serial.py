"""The default executor: every run in this process, one after another."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kdbench.contracts import Job, hookimpl


class SerialExecutor:
    """Runs jobs one after another in the calling process, sharing one worker (and its caches)."""

    def run(self, jobs: Sequence[Job], make_worker: Callable[..., Any]) -> Iterator[Any]:
        if not jobs:
            return
        worker = make_worker()
        for job in jobs:
            yield job.execute(worker)


@hookimpl
def kdbench_register_executors(register: Callable[..., None]) -> None:
    register("serial", SerialExecutor)
