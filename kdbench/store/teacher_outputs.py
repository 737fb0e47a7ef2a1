"""Teacher-output tables on disk: ``$KDBENCH_HOME/teacher_outputs/<key>.bin`` plus ``<key>.json``.

A table holds a teacher's logits for every augmented view of every training image, ``views × samples ×
classes`` in float32 (or float16), raw and row-major so that every process on a machine can memory-map
one file and share its pages. The JSON beside it says what was hashed into the key, the shape and dtype,
and how the table was built; it is written last, after the table was renamed into place, so a table
without its JSON is unfinished. A table is served only when its JSON names the same key and identity and
its size is exactly ``views × samples × classes × itemsize`` bytes; anything else (missing, truncated,
built for another teacher) is reported with its reason and rebuilt, never served.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor

from kdbench.contracts.files import temporary_beside
from kdbench.store.files import atomic_write_json, read_json
from kdbench.store.locks import file_lock

DTYPES = {"float32": (np.float32, torch.float32), "float16": (np.float16, torch.float16)}


class TeacherOutputsMeta(BaseModel):
    """What a table is: its key and the identity hashed into it, its layout, and how it was built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    identity: dict[str, Any]
    shape: tuple[int, int, int]  # views, samples, classes
    dtype: str
    build_seconds: float
    created_at: float
    # float16 only: the largest |fp16 − fp32| over the whole table, absolute and relative to max |logit|
    max_abs_error: float | None = None
    max_rel_error: float | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(DTYPES[self.dtype][0]).itemsize


class TableWriter:
    """Fills a new table through a memory map, then publishes it (or throws it away on failure)."""

    def __init__(self, store: TeacherOutputStore, key: str, shape: tuple[int, int, int], dtype: str) -> None:
        self.store, self.key, self.shape, self.dtype = store, key, shape, dtype
        store.root.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = temporary_beside(store.paths(key)[0])  # under the user's umask, like every kdbench file
        os.close(fd)
        self._array = np.memmap(self.tmp, dtype=DTYPES[dtype][0], mode="w+", shape=shape)
        self._table = torch.from_numpy(self._array).view(-1, shape[2])  # rows: view · samples + index
        self._max_abs = 0.0
        self._max_logit = 0.0
        self._start = time.perf_counter()

    def write(self, first_row: int, logits: Tensor) -> None:
        """Rows ``first_row..first_row+len(logits)`` (row = view · samples + index), from float32 logits on
        any device."""
        logits = logits.detach().to("cpu", torch.float32)
        stored = logits.to(DTYPES[self.dtype][1])
        if self.dtype != "float32":
            self._max_abs = max(self._max_abs, float((stored.float() - logits).abs().max()))
            self._max_logit = max(self._max_logit, float(logits.abs().max()))
        self._table[first_row:first_row + logits.shape[0]] = stored

    def commit(self, identity: dict[str, Any]) -> TeacherOutputsMeta:
        lossy = self.dtype != "float32"
        meta = TeacherOutputsMeta(
            key=self.key, identity=identity, shape=self.shape, dtype=self.dtype,
            build_seconds=time.perf_counter() - self._start, created_at=time.time(),
            max_abs_error=self._max_abs if lossy else None,
            max_rel_error=(self._max_abs / self._max_logit if self._max_logit else 0.0) if lossy else None,
        )
        self._array.flush()
        del self._table, self._array
        bin_path, meta_path = self.store.paths(self.key)
        meta_path.unlink(missing_ok=True)  # a stale JSON must never describe the new table
        os.replace(self.tmp, bin_path)
        atomic_write_json(meta_path, meta.model_dump(mode="json"))
        return meta

    def abort(self) -> None:
        del self._table, self._array
        self.tmp.unlink(missing_ok=True)


class TeacherOutputStore:
    """Teacher-output tables by content key under ``<home>/teacher_outputs``."""

    def __init__(self, home: str | Path) -> None:
        self.root = Path(home) / "teacher_outputs"

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.bin", self.root / f"{key}.json"

    def lock(self, key: str):
        """Held while a process builds this table: the others wait, then read it."""
        return file_lock(self.root / key)

    def check(self, key: str, identity: dict[str, Any], shape: tuple[int, int, int],
              dtype: str) -> TeacherOutputsMeta | str:
        """The table's metadata when it can be served as is, else why not (one line)."""
        bin_path, meta_path = self.paths(key)
        if not bin_path.is_file():
            return "missing"
        raw = read_json(meta_path)
        try:
            meta = TeacherOutputsMeta.model_validate(raw)
        except ValidationError:
            return "has no valid description (an unfinished build?)"
        if meta.key != key or meta.identity != identity:
            return "was built for another teacher, dataset, augmentation or precision"
        if tuple(meta.shape) != shape or meta.dtype != dtype:
            return f"has shape {meta.shape} {meta.dtype}, expected {shape} {dtype}"
        size = bin_path.stat().st_size
        if size != meta.nbytes:
            return f"is truncated or padded ({size} of {meta.nbytes} bytes)"
        return meta

    def open(self, meta: TeacherOutputsMeta) -> Tensor:
        """The table, memory-mapped copy-on-write: pages are shared by every process reading it."""
        bin_path, _ = self.paths(meta.key)
        array = np.memmap(bin_path, dtype=DTYPES[meta.dtype][0], mode="c", shape=meta.shape)
        return torch.from_numpy(array)

    def writer(self, key: str, shape: tuple[int, int, int], dtype: str) -> TableWriter:
        return TableWriter(self, key, shape, dtype)

    def remove(self, key: str) -> None:
        for path in self.paths(key):
            path.unlink(missing_ok=True)
