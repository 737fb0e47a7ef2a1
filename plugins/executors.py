"""Built-in executors."""

from __future__ import annotations

from kdbench.executors.serial import SerialExecutor
from kdbench.hookspecs import hookimpl


@hookimpl
def kdbench_register_executors(register):
    register("serial", SerialExecutor)
