"""Built-in loggers: the experiment trackers KD researchers already watch their runs in."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_loggers(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_loggers", register)
