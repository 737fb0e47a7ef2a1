"""Built-in label-revision strategies (docs/methods.md §5): the paper's, and the swap, one-hot and
no-revision baselines."""

from __future__ import annotations

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_revisions(register):
    register_folder(__name__, "kdbench_register_revisions", register)
