"""Plugin discovery: one path for built-in and third-party components.

Components come from three places, all through the hooks in ``kdbench.contracts.hookspecs``:
1. installed distributions that list a module under the ``kdbench`` entry-point group (this is how
   kdbench's own built-ins in ``kdbench_plugins`` arrive, one entry point per folder, exactly like a
   third party's);
2. single files passed with ``--plugin path.py`` or listed in a suite's ``plugins:``;
3. plugin objects handed over directly (tests, notebooks).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pluggy import HookImpl

from kdbench.contracts import hookspecs
from kdbench.errors import KdbenchError
from kdbench.registry.components import Registry

ENTRY_POINT_GROUP = "kdbench"

def _module_from_file(path: Path) -> ModuleType:
    """Import a single-file plugin under a name derived from its absolute path (stable per file)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise KdbenchError(f"plugin file not found: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"kdbench_file_plugin_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise KdbenchError(f"plugin file {path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken plugin is the user's to fix: say where, in one line
        del sys.modules[module_name]
        raise KdbenchError(f"plugin file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def build_plugin_manager(
    plugin_files: Sequence[str | Path] = (),
    plugins: Iterable[object] = (),
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """A fresh plugin manager with entry-point plugins, single-file plugins and given objects."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise KdbenchError(f"an installed kdbench plugin failed to load: {type(exc).__name__}: {exc}") from exc
    for path in plugin_files:
        module = _module_from_file(Path(path))
        if not pm.is_registered(module):
            pm.register(module, name=f"file:{Path(path).resolve()}")
    for obj in plugins:
        if not pm.is_registered(obj):
            pm.register(obj)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise KdbenchError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return pm


def _plugin_source(impl: HookImpl) -> str:
    """What a plugin is called in listings and messages: its module or file, or the class of a plugin object
    (which pluggy otherwise names by its ``id``)."""
    if impl.plugin_name == str(id(impl.plugin)):
        cls = type(impl.plugin)
        return f"{cls.__module__}.{cls.__qualname__}"
    return impl.plugin_name


def registry_from(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook, attributing each component to the plugin that gave it; each component
    is checked against its kind's contract as it is registered."""
    registry = Registry()
    for hook_name, kind in hookspecs.HOOK_KINDS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():

            def register(
                name: str,
                factory: Callable[..., Any],
                *,
                description: str | None = None,
                version: str = "1",
                _kind: str = kind,
                _src: str = _plugin_source(impl),
            ) -> None:
                registry.register(_kind, name, factory, description=description, version=version, source=_src)

            impl.function(register=register)
    return registry


def load_registry(
    plugin_files: Sequence[str | Path] = (),
    plugins: Iterable[object] = (),
    entry_points: bool = True,
) -> Registry:
    """The registry a command or a worker uses: everything installed plus the given plugins."""
    registry = registry_from(build_plugin_manager(plugin_files, plugins, entry_points))
    if entry_points and not registry.names("model"):
        raise KdbenchError(
            "no kdbench components are registered: install the package (pip install -e .) so that "
            "its entry points exist"
        )
    return registry
