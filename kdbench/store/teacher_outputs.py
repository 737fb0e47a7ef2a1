"""Teacher-output tables on disk: ``$KDBENCH_HOME/teacher_outputs/<key>.bin`` plus ``<key>.json``.

A table holds a teacher's logits for every augmented view of every training image, ``views × samples ×
classes`` in float32 (or float16), raw and row-major so that every process on a machine can memory-map
one file and share its pages. The JSON beside it says what was hashed into the key, the shape and dtype,
and how the table was built; it is written last, after the table was renamed into place, so a table
without its JSON is unfinished. A table is served only when its JSON names the same key and identity and
its size is exactly ``views × samples × classes × itemsize`` bytes; anything else (missing, truncated,
built for another teacher) is reported with its reason and rebuilt, never served.

A build fills ``<key>.partial`` view after view, under the table's lock. Once a view's rows are written,
``<key>.progress.json`` (written atomically) records it: the build's key, identity, layout and batch
size, and a digest of every finished view's bytes. A build that is interrupted (Ctrl-C, a kill, a lost node)
leaves both files, and the next build goes on after the finished views whose bytes still match their
digests; it computes every view the way the first build did (same batches, which never span views), so the
table it publishes is the one a build in one go makes. A progress file that is not valid, that describes
another build, or whose partial file is missing or has another size is not trusted: the build starts over,
with a one-line warning. A partial file is never served: only a renamed ``<key>.bin`` with its JSON is.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import stat
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor

from kdbench.errors import KdbenchWarning
from kdbench.store.files import atomic_write_json, read_json
from kdbench.store.locks import file_lock

DTYPES = {"float32": (np.float32, torch.float32), "float16": (np.float16, torch.float16)}
_NO_LINKS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


class TeacherOutputsMeta(BaseModel):
    """What a table is: its key and the identity hashed into it, its layout, and how it was built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    identity: dict[str, Any]
    shape: tuple[int, int, int]  # views, samples, classes
    dtype: str
    build_seconds: float  # all sessions of the build together, when it was resumed
    created_at: float
    # float16 only: the largest |fp16 − fp32| over the whole table, absolute and relative to max |logit|
    max_abs_error: float | None = None
    max_rel_error: float | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(DTYPES[self.dtype][0]).itemsize


class FinishedView(BaseModel):
    """One view of a build in progress, flushed to disk: a digest of its bytes and its float16 error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str
    max_abs: float = 0.0  # the view's largest |fp16 − fp32| (0 for float32)
    max_logit: float = 0.0  # and its largest |logit| (0 for float32)


class BuildProgress(BaseModel):
    """``<key>.progress.json``: how far a build got, rewritten after every finished view."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    identity: dict[str, Any]
    shape: tuple[int, int, int]
    dtype: str
    batch_size: int = Field(ge=1)  # the batches of every view: a resumed build uses the same ones
    seconds: float  # build time so far, all sessions together
    views: list[FinishedView]  # views 0, 1, ... in order


def view_digest(view: np.ndarray[Any, Any]) -> str:
    """sha256 of one view's bytes (C-contiguous), shortened: what a resumed build checks a view against."""
    return hashlib.sha256(np.ascontiguousarray(view).data.cast("B")).hexdigest()[:32]


class TableWriter:
    """Fills a new table through a memory map of ``<key>.partial``, view after view, then publishes it.

    Made by :meth:`TeacherOutputStore.writer` under the table's lock. Given the table's ``identity``, it
    continues a build that was interrupted (``views_done`` views are there already; build with
    ``batch_size``, the batch size of the first session), and records every view the caller finishes
    (:meth:`view_done`). On an error the caller either keeps the finished views for the next build
    (:meth:`close`) or throws the partial table away (:meth:`abort`)."""

    def __init__(self, store: TeacherOutputStore, key: str, shape: tuple[int, int, int], dtype: str,
                 identity: dict[str, Any] | None = None, batch_size: int = 1) -> None:
        self.store, self.key, self.shape, self.dtype = store, key, tuple(shape), dtype
        self.identity, self.batch_size = identity, batch_size
        store.root.mkdir(parents=True, exist_ok=True)
        self.partial, self.progress_path = store.build_paths(key)
        self._itemsize = np.dtype(DTYPES[dtype][0]).itemsize
        self._nbytes = math.prod(shape) * self._itemsize
        self._views: list[FinishedView] = []
        self._seconds_before = 0.0
        self._view_abs = self._view_logit = 0.0
        self._max_abs = self._max_logit = 0.0
        self._mmap: mmap.mmap | None = None
        self._array: np.ndarray[Any, Any] | None = None
        self._table: Tensor | None = None  # the map as rows: row = view · samples + index
        if identity is None or not self._resume(identity):
            self._start_over()
        self.resumed_views = len(self._views)
        self._start = time.perf_counter()

    @property
    def views_done(self) -> int:
        """The views finished so far: the build goes on with view ``views_done``."""
        return len(self._views)

    # -- opening ---------------------------------------------------------------------------------------------

    def _start_over(self) -> None:
        self.progress_path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)  # a link is removed, never followed
        # a new file, under the user's umask like every kdbench file, never an existing file or a link
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_LINKS, 0o666)
        try:
            os.ftruncate(fd, self._nbytes)
            self._map(fd)
        finally:
            os.close(fd)

    def _resume(self, identity: dict[str, Any]) -> bool:
        """Continue the build recorded beside the partial table, when it is this build and its views check."""
        if not self.progress_path.exists():
            return False  # never started, or nothing finished yet: nothing to lose
        reason = self._unusable(identity)
        if reason is None:
            return True
        warnings.warn(f"teacher-output build progress {self.progress_path} {reason}: the build starts over",
                      KdbenchWarning, stacklevel=4)
        if self._mmap is not None:
            self._unmap()
        return False

    def _unusable(self, identity: dict[str, Any]) -> str | None:
        """Why the recorded progress cannot be continued (None: it is continued, ``self`` holds it)."""
        raw = read_json(self.progress_path)
        try:
            progress = BuildProgress.model_validate(raw)
        except ValidationError:
            return "is not a valid progress file"
        if (progress.key, progress.identity, tuple(progress.shape), progress.dtype) != (
                self.key, identity, self.shape, self.dtype):
            return "describes another build"
        if len(progress.views) > self.shape[0]:
            return f"lists {len(progress.views)} views of {self.shape[0]}"
        try:
            fd = os.open(self.partial, os.O_RDWR | _NO_LINKS)
        except OSError:
            return f"has no partial table {self.partial.name}"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != self._nbytes:
                return f"has a partial table of {info.st_size} bytes, not {self._nbytes}"
            self._map(fd)
        finally:
            os.close(fd)
        assert self._array is not None
        for view, finished in enumerate(progress.views):
            if view_digest(self._array[view]) != finished.digest:
                warnings.warn(f"teacher-output build {self.partial}: view {view} does not match its digest; "
                              f"the build goes on from view {view}", KdbenchWarning, stacklevel=5)
                break
            self._views.append(finished)
        self.batch_size, self._seconds_before = progress.batch_size, progress.seconds
        self._max_abs = max((v.max_abs for v in self._views), default=0.0)
        self._max_logit = max((v.max_logit for v in self._views), default=0.0)
        return None

    def _map(self, fd: int) -> None:
        self._mmap = mmap.mmap(fd, self._nbytes)
        self._array = np.frombuffer(self._mmap, dtype=DTYPES[self.dtype][0]).reshape(self.shape)
        self._table = torch.from_numpy(self._array).view(-1, self.shape[2])

    def _unmap(self) -> None:
        self._table = self._array = None  # drop every view of the map before closing it
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:  # a view of it is still referenced somewhere: the collector closes it
                pass
            self._mmap = None

    # -- filling ---------------------------------------------------------------------------------------------

    def write(self, first_row: int, logits: Tensor) -> None:
        """Rows ``first_row..first_row+len(logits)`` (row = view · samples + index), from float32 logits on
        any device."""
        assert self._table is not None, "the writer was closed"
        logits = logits.detach().to("cpu", torch.float32)
        stored = logits.to(DTYPES[self.dtype][1])
        if self.dtype != "float32":
            self._view_abs = max(self._view_abs, float((stored.float() - logits).abs().max()))
            self._view_logit = max(self._view_logit, float(logits.abs().max()))
            self._max_abs, self._max_logit = max(self._max_abs, self._view_abs), max(self._max_logit, self._view_logit)
        self._table[first_row:first_row + logits.shape[0]] = stored

    def view_done(self, view: int) -> None:
        """Every row of ``view`` is written: record the view as finished, with a digest of its bytes (given the
        table's identity; without one, the build is not resumable and nothing is recorded).

        The rows are not forced to disk here (an msync per view would cost as much as the digest): a kill or
        Ctrl-C leaves them in the page cache, which belongs to the file, and rows that a power cut or a lost
        node kept from reaching the disk no longer match their digest, so the next build computes them again."""
        if view != len(self._views):
            raise ValueError(f"view {view} finished out of order: view {len(self._views)} is next")
        assert self._array is not None, "the writer was closed"
        digest = view_digest(self._array[view]) if self.identity is not None else ""
        self._views.append(FinishedView(digest=digest, max_abs=self._view_abs, max_logit=self._view_logit))
        self._view_abs = self._view_logit = 0.0
        if self.identity is not None:
            progress = BuildProgress(key=self.key, identity=self.identity, shape=self.shape, dtype=self.dtype,
                                     batch_size=self.batch_size, seconds=self._seconds(), views=self._views)
            atomic_write_json(self.progress_path, progress.model_dump(mode="json"))

    def _seconds(self) -> float:
        return self._seconds_before + time.perf_counter() - self._start

    # -- ending ----------------------------------------------------------------------------------------------

    def commit(self, identity: dict[str, Any] | None = None) -> TeacherOutputsMeta:
        """Publish the table: renamed to ``<key>.bin``, then described by ``<key>.json``. A writer made with
        an identity publishes only when every view is finished."""
        identity = self.identity if identity is None else identity
        if identity is None:
            raise ValueError("a teacher-output table needs its identity to be published")
        if self.identity is not None:
            if identity != self.identity:
                raise ValueError("a teacher-output table is published with the identity it was built for")
            if len(self._views) != self.shape[0]:
                raise RuntimeError(f"teacher-output table {self.key}: {len(self._views)} of {self.shape[0]} views "
                                   "finished; not published")
        lossy = self.dtype != "float32"
        meta = TeacherOutputsMeta(
            key=self.key, identity=identity, shape=self.shape, dtype=self.dtype,
            build_seconds=self._seconds(), created_at=time.time(),
            max_abs_error=self._max_abs if lossy else None,
            max_rel_error=(self._max_abs / self._max_logit if self._max_logit else 0.0) if lossy else None,
        )
        assert self._mmap is not None, "the writer was closed"
        self._mmap.flush()
        self._unmap()
        bin_path, meta_path = self.store.paths(self.key)
        meta_path.unlink(missing_ok=True)  # a stale JSON must never describe the new table
        os.replace(self.partial, bin_path)
        atomic_write_json(meta_path, meta.model_dump(mode="json"))
        self.progress_path.unlink(missing_ok=True)
        return meta

    def close(self) -> None:
        """Stop without publishing, keeping the finished views for the next build to go on from."""
        self._unmap()

    def abort(self) -> None:
        """Stop without publishing, and throw the partial table and its progress away."""
        self._unmap()
        self.partial.unlink(missing_ok=True)
        self.progress_path.unlink(missing_ok=True)


class TeacherOutputStore:
    """Teacher-output tables by content key under ``<home>/teacher_outputs``."""

    def __init__(self, home: str | Path) -> None:
        self.root = Path(home) / "teacher_outputs"

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.bin", self.root / f"{key}.json"

    def build_paths(self, key: str) -> tuple[Path, Path]:
        """The table being built and its progress file: never served, continued by the next build."""
        return self.root / f"{key}.partial", self.root / f"{key}.progress.json"

    def lock(self, key: str) -> FileLock:
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

    def writer(self, key: str, shape: tuple[int, int, int], dtype: str, identity: dict[str, Any] | None = None,
               batch_size: int = 1) -> TableWriter:
        """A writer for a new table, under :meth:`lock`. With ``identity``, it goes on with the finished
        views of an interrupted build of the same table (its ``views_done`` and ``batch_size`` say how)."""
        return TableWriter(self, key, shape, dtype, identity, batch_size)

    def remove(self, key: str) -> None:
        for path in self.paths(key):
            path.unlink(missing_ok=True)
