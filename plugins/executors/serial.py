"""The default executor: every run in this process, one after another."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kdbench.contracts.hookspecs import hookimpl


class SerialExecutor:
    """Runs specs one after another in the calling process, sharing one worker (and its caches)."""

    def run(self, specs: Sequence[Any], make_worker: Callable[[], Any]) -> Iterator[Any]:
        if not specs:
            return
        worker = make_worker()
        for spec in specs:
            yield worker.run(spec)


@hookimpl
def kdbench_register_executors(register):
    register("serial", SerialExecutor)
