"""Built-in label-revision strategies (docs/methods.md §5): the paper's, and the swap, one-hot and
no-revision baselines."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_revisions(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_revisions", register)
