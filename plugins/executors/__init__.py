"""Built-in executors: how the runs of a suite are spread over processes and machines."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_executors(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_executors", register)
