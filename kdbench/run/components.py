"""A worker's components: the registry, the device, and the datasets it has loaded (kept for its runs)."""

from __future__ import annotations

import torch

from kdbench.contracts import ImageDataset, StreamedDataset
from kdbench.errors import KdbenchError
from kdbench.plan.spec import ComponentRef, DatasetRef, content_key
from kdbench.registry import Registry, load_registry
from kdbench.run.options import RunOptions
from kdbench.train.evaluate import resolve_device
from kdbench.train.label_noise import with_label_noise
from kdbench.train.sources import AnyDataset


def seed_everything(seed: int) -> None:
    """Seed torch's global generators before a model (and a method's modules) are initialised."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class Components:
    """Looks components up by name and builds them; a dataset is loaded once per process and device."""

    def __init__(self, options: RunOptions, plugin_files: tuple[str, ...] = ()) -> None:
        self.options = options
        self.registry: Registry = load_registry(tuple(plugin_files) + options.extra_plugin_files)
        self.device = resolve_device(options.device)
        self._datasets: dict[str, AnyDataset] = {}

    def dataset(self, ref: ComponentRef) -> AnyDataset:
        """The dataset of ``ref``: held on the worker's device, or (an image folder) streamed from disk."""
        key = content_key(ref.identity())
        if key not in self._datasets:
            comp = self.registry.get("dataset", ref.name)
            try:
                data = comp.create(ref.params, root=self.options.data_path, download=self.options.download)
            except (TypeError, ValueError, ArithmeticError, MemoryError) as exc:  # a value the loader cannot use
                raise KdbenchError(f"dataset {ref.name!r} with {ref.params}: {type(exc).__name__}: {exc}") from None
            if not isinstance(data, ImageDataset | StreamedDataset):
                raise KdbenchError(f"dataset {ref.name!r}: its loader returned {type(data).__name__}, "
                                   "not an ImageDataset or a StreamedDataset")
            if isinstance(ref, DatasetRef) and ref.noisy:
                data = self._noisy(data, ref)
            self._datasets[key] = data.to(self.device) if isinstance(data, ImageDataset) else data
        return self._datasets[key]

    @staticmethod
    def _noisy(data: AnyDataset, ref: DatasetRef) -> ImageDataset:
        noise = ref.label_noise
        assert noise is not None
        if not isinstance(data, ImageDataset):
            raise KdbenchError(f"label_noise: dataset {ref.name!r} is streamed from disk; label noise needs the "
                               "labels held in memory")
        return with_label_noise(data, noise.rate, noise.kind, noise.seed)

    def model(self, arch: str, num_classes: int) -> torch.nn.Module:
        model: torch.nn.Module = self.registry.get("model", arch).create(num_classes=num_classes)
        return model
