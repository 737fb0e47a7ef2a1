"""Built-in architectures: RepDistiller's 22 CIFAR models (same state-dict keys and shapes, so published
checkpoints load strictly) and torchvision's ImageNet ResNets. One module per family."""

from __future__ import annotations

from collections.abc import Callable

from kdbench.contracts import hookimpl, register_folder


@hookimpl
def kdbench_register_models(register: Callable[..., None]) -> None:
    register_folder(__name__, "kdbench_register_models", register)
