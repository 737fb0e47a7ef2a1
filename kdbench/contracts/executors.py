"""The executor contract: how the jobs of a plan are carried out (in this process, a pool, a cluster).

A job is plain, picklable data with two methods: ``job.execute(worker)`` does the work in a worker and
returns its outcome, and ``job.crashed(reason)`` is the outcome to report when the process running it
died (a kill, an out-of-memory, a lost node). An executor receives the jobs of one wave and a
picklable ``make_worker``; in each process it uses, it calls ``make_worker(device=..., threads=..., quiet=...)``
once (all optional: the device a process is pinned to, its torch threads, ``quiet`` for no progress
output; leave ``quiet`` out to follow the command's ``--quiet``, so that a worker's progress lines reach the
user or the job's log) and ``job.execute(worker)``
per job, and yields every outcome as it arrives. An exception a job raises (a user error, say) is
re-raised by the executor. Whether a run is already finished is the worker's business (it asks the run
store, under a file lock), so every executor skips exactly the same runs and none trains one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol


class Job(Protocol):
    @property
    def label(self) -> str: ...

    def execute(self, worker: Any) -> Any: ...
    def crashed(self, reason: str) -> Any: ...


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], make_worker: Callable[..., Any]) -> Iterator[Any]: ...


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or fail with a one-line error naming the extra that installs it."""
    import importlib

    from kdbench.errors import KdbenchError

    try:
        return importlib.import_module(module)
    except ImportError:
        raise KdbenchError(f"{module} is not installed: pip install 'kdbench[{extra}]'") from None
