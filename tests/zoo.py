"""The model zoo by name, as the registry has it: ``CIFAR_MODELS["resnet8"](num_classes=10)``."""

from __future__ import annotations

from kdbench.registry import load_registry

_REGISTRY = load_registry()
CIFAR_MODELS = {n: _REGISTRY.get("model", n).factory for n in _REGISTRY.names("model") if not n.startswith("imagenet_")}
IMAGENET_MODELS = {n: _REGISTRY.get("model", n).factory for n in _REGISTRY.names("model") if n.startswith("imagenet_")}
