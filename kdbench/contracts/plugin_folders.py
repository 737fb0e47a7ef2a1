"""Register every module of a plugin folder: how kdbench's built-ins stay one file per component.

kdbench's own plugins live in folders (``plugins/methods/``, ``plugins/estimators/``, ...), one
entry point per folder. The folder's ``__init__`` implements its kind's hook by calling
:func:`register_folder`, which imports each module of the folder and calls the same hook in it. Each
module is therefore an ordinary plugin, exactly what a third party would write as a single file; a
new built-in is one new file, with no edit anywhere else.

Modules whose name starts with an underscore are helpers (shared code, numerics) and register nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from kdbench.errors import KdbenchError


def folder_modules(package_name: str) -> list[str]:
    """Full names of the plugin modules in a package folder, sorted, helpers (``_name``) left out."""
    package = importlib.import_module(package_name)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))
    return [f"{package_name}.{name}" for name in names]


def register_folder(package_name: str, hook_name: str, register: Callable[..., Any]) -> None:
    """Call ``hook_name(register=register)`` of every plugin module in the folder of ``package_name``."""
    for module_name in folder_modules(package_name):
        module = importlib.import_module(module_name)
        hook = getattr(module, hook_name, None)
        if hook is None:
            raise KdbenchError(
                f"plugin module {module_name} defines no {hook_name}(register); a helper module of a plugin "
                "folder must have a name starting with an underscore"
            )
        hook(register=register)
