"""Built-in data-value estimators for Data Selection (docs/methods.md §6a): influence, random, TracIn,
KNN-Shapley and cheap controls. Modules starting with an underscore hold the shared numerics."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_estimators", register)
