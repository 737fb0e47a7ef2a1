"""The executor contract: how the runs of a plan are carried out (in this process, a pool, a cluster).

An executor receives plain run specs and a picklable ``make_worker`` callable; in each process it
uses, it calls ``make_worker()`` once and ``worker.run(spec)`` per spec, and yields every run's outcome
as it arrives. Whether a run is already finished is the worker's business (it asks the run store),
so every executor skips exactly the same runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol


class Executor(Protocol):
    def run(self, specs: Sequence[Any], make_worker: Callable[[], Any]) -> Iterator[Any]: ...
