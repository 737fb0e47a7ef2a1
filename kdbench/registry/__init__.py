"""Plugin discovery and the registry of components: name → component, "did you mean", parameter checks."""

from kdbench.registry.components import CONTEXT_PARAMETERS, REQUIRED, Component, Registry, did_you_mean
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
