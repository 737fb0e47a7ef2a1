"""Built-in datasets: digits (embedded default), synthetic, CIFAR-10 and CIFAR-100."""

from __future__ import annotations

from kdbench.datasets import load_cifar10, load_cifar100, load_digits, make_synthetic
from kdbench.hookspecs import hookimpl


@hookimpl
def kdbench_register_datasets(register):
    register("digits", load_digits, description="scikit-learn's bundled 8×8 handwritten digits (no download)")
    register("synthetic", make_synthetic, description="generated CIFAR-shaped data of any size and class count")
    register("cifar10", load_cifar10, description="CIFAR-10 (torchvision layout, checksum-verified download)")
    register("cifar100", load_cifar100, description="CIFAR-100 (torchvision layout, checksum-verified download)")
