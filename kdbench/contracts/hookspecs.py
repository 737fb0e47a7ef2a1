"""The plugin contract: pluggy hook specifications and nothing else.

Every hook receives a ``register`` callback so that one plugin module can contribute any number of
components of a kind. Built-in components use exactly these hooks, through the same ``kdbench``
entry-point group as third-party packages.

``register(name, factory, *, description=None, version="1")``:
    ``name``     the component's public name (what suite files and the CLI use);
    ``factory``  a class or function; its keyword parameters, their type hints and their defaults are
                 the component's parameters, as shown by ``kdbench list`` and checked in suite files;
    ``version``  bump it when the component's numbers change: it is part of every run key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

PROJECT = "kdbench"


class Register(Protocol):
    """The ``register`` callback every hook receives (module docstring)."""

    def __call__(self, name: str, factory: Callable[..., Any], *, description: str | None = None,
                 version: str = "1") -> None: ...


hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kdbench_register_methods(register: Register) -> None:
    """Register distillation methods (subclasses of ``kdbench.contracts.DistillationMethod``)."""


@hookspec
def kdbench_register_estimators(register: Register) -> None:
    """Register data-value estimators that score every training sample from a trained teacher."""


@hookspec
def kdbench_register_revisions(register: Register) -> None:
    """Register label-revision strategies that rewrite the teacher's probabilities."""


@hookspec
def kdbench_register_models(register: Register) -> None:
    """Register model architectures: ``factory(num_classes) -> nn.Module`` with ``forward(x, features)``."""


@hookspec
def kdbench_register_datasets(register: Register) -> None:
    """Register datasets: ``factory(*, root, download, **params) -> kdbench.contracts.ImageDataset`` (or a
    ``StreamedDataset``), optionally with a ``missing_data`` check of its files (``kdbench.contracts.checks_data``)."""


@hookspec
def kdbench_register_executors(register: Register) -> None:
    """Register executors: ``factory(**params)`` with ``.run(specs, make_worker) -> iterator of outcomes``."""


@hookspec
def kdbench_register_loggers(register: Register) -> None:
    """Register experiment-tracker loggers: ``factory(runs_root, **params)`` → a ``kdbench.contracts.RunLogger``."""


#: Hook name → the component kind it registers.
HOOK_KINDS: dict[str, str] = {
    "kdbench_register_methods": "method",
    "kdbench_register_estimators": "estimator",
    "kdbench_register_revisions": "revision",
    "kdbench_register_models": "model",
    "kdbench_register_datasets": "dataset",
    "kdbench_register_executors": "executor",
    "kdbench_register_loggers": "logger",
}

#: The component kinds, in the order ``kdbench list`` shows them.
KINDS: tuple[str, ...] = tuple(HOOK_KINDS.values())
