"""Built-in architectures: the CIFAR zoo (RepDistiller names and state dicts) and ImageNet ResNets."""

from __future__ import annotations

from kdbench.hookspecs import hookimpl
from kdbench.models import CIFAR_MODELS, IMAGENET_MODELS


@hookimpl
def kdbench_register_models(register):
    for name, factory in {**CIFAR_MODELS, **IMAGENET_MODELS}.items():
        register(name, factory)
