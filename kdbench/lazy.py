"""Package namespaces whose names are imported on first use (PEP 562).

``kdbench.contracts``, ``plan``, ``registry``, ``run``, ``store`` and ``tables`` keep their short import paths
(``from kdbench.store import RunRecord``) without importing every module behind them: the training side imports
torch (about 470 MB and 2 s), and a command that only reads records (``kdbench leaderboard``) never needs it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for the names in ``where`` (name → module defining it): a name
    is imported from its module on first use and then kept in the package, so later reads are plain lookups.

    A name that is also its module's name (``kdbench.plan.expand``, the function, in ``kdbench/plan/expand.py``)
    stays the name: importing the submodule sets the package attribute to the module, and the package ignores
    that, as the package's eager ``from .expand import expand`` used to overwrite it."""
    namespace = importlib.import_module(package).__dict__
    shadowed = frozenset(name for name, module in where.items() if module == f"{package}.{name}")
    if shadowed:
        sys.modules[package].__class__ = _keeping(shadowed)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__


def _keeping(names: frozenset[str]) -> type[ModuleType]:
    """A module class that does not let the import system replace ``names`` with the submodules of those names."""

    class KeepsNames(ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if name in names and isinstance(value, ModuleType):
                self.__dict__.pop(name, None)  # resolved again by __getattr__, to the name, not the module
                return
            super().__setattr__(name, value)

    return KeepsNames
