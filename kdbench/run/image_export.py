"""A dataset held in memory written as an image folder of PNG files, for the streamed ``imagefolder``
dataset: what ``kdbench export-folder`` does, and the doctor's streaming check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kdbench.contracts import ImageDataset, export_folder_name
from kdbench.errors import KdbenchError
from kdbench.plan.spec import DatasetRef
from kdbench.run.options import RunOptions
from kdbench.run.worker import Worker
from kdbench.store.image_folder import WrittenFolder, write_image_folder


def export_image_folder(options: RunOptions, dataset: str, params: Mapping[str, Any],
                        out: Path | None = None) -> WrittenFolder:
    """Load ``dataset`` with ``params`` (on the CPU) and write it under ``out`` (default:
    ``<data root>/<dataset>_folder``), which must not exist yet."""
    worker = Worker(replace(options, device="cpu"))
    comp = worker.components.registry.get("dataset", dataset)
    resolved = comp.resolve(dict(params), where=f"dataset {dataset}")
    data = worker.components.dataset(DatasetRef(dataset, resolved, comp.version))
    if not isinstance(data, ImageDataset):
        raise KdbenchError(f"{dataset} is already an image folder on disk")
    return write_image_folder(data, out if out is not None else options.data_path / export_folder_name(dataset))
