"""Plugin discovery and the registry of components: name → component, "did you mean", parameter checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
    from kdbench.errors import did_you_mean
    from kdbench.registry.components import CONTEXT_PARAMETERS, REQUIRED, Component, Registry
    from kdbench.registry.discovery import ENTRY_POINT_GROUP, build_plugin_manager, load_registry, registry_from

__all__ = [
    "CONTEXT_PARAMETERS",
    "ENTRY_POINT_GROUP",
    "REQUIRED",
    "Component",
    "Registry",
    "build_plugin_manager",
    "did_you_mean",
    "load_registry",
    "registry_from",
]

__getattr__, __dir__ = lazy_names(__name__, {
    "CONTEXT_PARAMETERS": "kdbench.registry.components",
    "Component": "kdbench.registry.components",
    "ENTRY_POINT_GROUP": "kdbench.registry.discovery",
    "REQUIRED": "kdbench.registry.components",
    "Registry": "kdbench.registry.components",
    "build_plugin_manager": "kdbench.registry.discovery",
    "did_you_mean": "kdbench.errors",
    "load_registry": "kdbench.registry.discovery",
    "registry_from": "kdbench.registry.discovery",
})
