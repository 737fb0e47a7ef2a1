"""A run's teacher logits: from the exact teacher-output cache, or from the live teacher (docs/methods.md §11).

The cache is used for methods that read the teacher's logits only (KD, MSE-KD, DKD, CTKD, DTD-LA, with or
without LR and DS). ``teacher_cache: auto`` uses it when a valid table exists or when the plan's runs
would run the teacher live over more epochs than the table has views (a 240-epoch CIFAR run alone does:
240 > 162); ``on`` always, ``off`` never. A table is keyed by what determines its values: the teacher
(its key and a digest of its weights), the training images (the dataset's identity and a digest of
the pixels), the view grid and normalisation, the compute precision and the storage dtype. Tables are
built once under a file lock, so the processes of an executor never build one twice.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from kdbench.contracts import DistillationMethod, ImageDataset, StreamedDataset
from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import RunSpec, content_key
from kdbench.run.components import Components
from kdbench.run.progress import make_reporter
from kdbench.store import TeacherCacheRecord, TeacherOutputsMeta, TeacherOutputStore
from kdbench.train.batches import training_augmentation
from kdbench.train.teacher_outputs import (
    CachedTeacherLogits,
    TeacherLogits,
    ViewGrid,
    build_steps,
    build_teacher_logits,
)

TABLE_FORMAT = 1  # bump when the table's layout or the meaning of a view changes
# A CPU runs resnet32x4 fastest in small batches (60 images/s at 64, 42 at 1024 on the 2-core machine of
# benchmarks/teacher_cache.py: the activations of a large batch leave the cache); a GPU wants large ones.
CPU_BUILD_BATCH = 64


def tensor_digest(tensors: list[tuple[str, Tensor]]) -> str:
    """sha256 over names and raw bytes: the same weights or pixels give the same digest on any device."""
    h = hashlib.sha256()
    for name, tensor in tensors:
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class ServedLogits:
    """Where one run's teacher logits come from: ``source`` None means the live teacher."""

    source: TeacherLogits | None
    record: TeacherCacheRecord | None


class TeacherOutputs:
    """Decides, per run, between cache and live teacher; builds, checks and loads tables for a worker."""

    def __init__(self, components: Components, store: TeacherOutputStore, quiet: bool = False) -> None:
        self.components = components
        self.store = store
        self.quiet = quiet
        # id → (object, digest) for teachers and datasets: the object is kept so its id is never reused
        self._digests: dict[int, tuple[object, str]] = {}
        self._loaded: tuple[str, Tensor] | None = None  # the last table served, on the worker's device

    def for_run(self, spec: RunSpec, method: DistillationMethod, teacher: nn.Module | None,
                data: ImageDataset | StreamedDataset) -> ServedLogits:
        if teacher is None or spec.teacher is None or not method.uses_teacher:
            return ServedLogits(None, None)
        if method.needs_features:
            return ServedLogits(None, TeacherCacheRecord(used=False, reason="the method reads the teacher's features"))
        if isinstance(data, StreamedDataset):
            return ServedLogits(None, TeacherCacheRecord(used=False, reason="streamed from disk: views are not a grid"))
        mode = spec.recipe.teacher_cache
        if mode == "off":
            return ServedLogits(None, TeacherCacheRecord(used=False, reason="teacher_cache: off"))
        grid = ViewGrid.of(training_augmentation(spec.recipe.augment))
        dtype = spec.recipe.teacher_cache_dtype
        identity = self.identity(spec, teacher, data, grid, dtype)
        key = content_key(identity)
        shape = (grid.count, data.num_train, data.num_classes)
        status = self.store.check(key, identity, shape, dtype)
        passes = max(spec.teacher_passes, spec.recipe.epochs)
        if mode == "auto" and not isinstance(status, TeacherOutputsMeta) and passes <= grid.count:
            reason = f"auto: {passes} teacher epochs on this training set ≤ {grid.count} views to build"
            return ServedLogits(None, TeacherCacheRecord(used=False, reason=reason))
        meta, built = status, None
        if not isinstance(meta, TeacherOutputsMeta):
            meta = self._build(key, identity, shape, dtype, teacher, data, grid, spec.teacher.arch, status)
            built = meta.build_seconds
        if mode == "on":
            reason = "on"
        else:  # auto, and the table existed or the plan's teacher epochs pay for building it
            paid = passes > grid.count
            reason = f"auto: {passes} teacher epochs > {grid.count} views" if paid else "auto: table exists"
        table = self._place(meta)
        if table is None:
            return ServedLogits(None, TeacherCacheRecord(used=False, reason="out of device memory: live teacher",
                                                         key=key, dtype=dtype, views=grid.count))
        record = TeacherCacheRecord(used=True, reason=reason, key=key, dtype=dtype, views=grid.count,
                                    built_seconds=built, max_abs_error=meta.max_abs_error,
                                    max_rel_error=meta.max_rel_error)
        return ServedLogits(CachedTeacherLogits(table, grid), record)

    def identity(self, spec: RunSpec, teacher: nn.Module, data: ImageDataset, grid: ViewGrid,
                 dtype: str) -> dict[str, Any]:
        """Everything that determines a table's values, hashed into its key and kept in its description."""
        assert spec.teacher is not None
        options = self.components.options
        device = self.components.device
        return {
            "format": TABLE_FORMAT,
            "teacher": spec.teacher.key,
            "weights": self._digest(teacher, lambda: list(teacher.state_dict().items())),
            "dataset": spec.dataset.identity(),
            "train_images": self._digest(data, lambda: [("train", data.train_images)]),
            "views": grid.identity(),
            "mean": list(data.mean),
            "std": list(data.std),
            "compute": "bf16-autocast" if device.startswith("cuda") and options.mixed_precision else "float32",
            "dtype": dtype,
        }

    def _digest(self, owner: object, tensors) -> str:
        known = self._digests.get(id(owner))
        if known is None or known[0] is not owner:
            known = self._digests[id(owner)] = (owner, tensor_digest(tensors()))
        return known[1]

    def _build(self, key: str, identity: dict[str, Any], shape: tuple[int, int, int], dtype: str,
               teacher: nn.Module, data: ImageDataset, grid: ViewGrid, arch: str,
               status: str) -> TeacherOutputsMeta:
        """Build the table under its lock (another process may be building it: wait, then read it)."""
        with self.store.lock(key):
            again = self.store.check(key, identity, shape, dtype)
            if isinstance(again, TeacherOutputsMeta):
                return again
            bin_path, _ = self.store.paths(key)
            if again != "missing":
                warnings.warn(f"teacher-output cache {bin_path} {again}: rebuilding it", KdbenchWarning, stacklevel=2)
                self.store.remove(key)
            options, device = self.components.options, self.components.device
            batch_size = options.eval_batch_size if device.startswith("cuda") else CPU_BUILD_BATCH
            reporter = make_reporter(self.quiet)
            reporter.start(f"teacher outputs {arch} ({grid.count} views)", 1, build_steps(grid, data.num_train,
                                                                                         batch_size), 1)
            writer = self.store.writer(key, shape, dtype)
            try:  # the teacher and the data are on the worker's device already
                build_teacher_logits(teacher, data, grid, writer.write, batch_size=batch_size,
                                     mixed_precision=options.mixed_precision,
                                     channels_last=device.startswith("cuda"), step=reporter.step)
            except BaseException:
                writer.abort()
                raise
            finally:
                reporter.finish()
            return writer.commit(identity)

    def _place(self, meta: TeacherOutputsMeta) -> Tensor | None:
        """The table where the engine reads it: the memory map itself on CPU, a copy in device memory on a
        GPU (None, with a one-line warning, when it does not fit)."""
        if self._loaded is not None and self._loaded[0] == meta.key:
            return self._loaded[1]
        table = self.store.open(meta)
        device = self.components.device
        if not device.startswith("cpu"):
            self._loaded = None  # free the previous table before placing this one
            try:
                placed = torch.empty(table.shape, dtype=table.dtype, device=device)
                for view in range(table.shape[0]):
                    placed[view].copy_(table[view])
            except torch.OutOfMemoryError:
                gb = meta.nbytes / 1e9
                warnings.warn(f"the teacher-output cache ({gb:.1f} GB) does not fit in {device} memory: "
                              "running the teacher live", KdbenchWarning, stacklevel=2)
                return None
            table = placed
        self._loaded = (meta.key, table)
        return table
