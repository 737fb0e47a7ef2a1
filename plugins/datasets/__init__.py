"""Built-in datasets: digits (the embedded default), synthetic, CIFAR-10 and CIFAR-100."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_datasets(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_datasets", register)
