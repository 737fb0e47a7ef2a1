"""A run's teacher logits: from the exact teacher-output cache, or from the live teacher (docs/methods.md §11).

The cache is used for methods that read the teacher's logits only (KD, MSE-KD, DKD, CTKD, DTD-LA, with or
without LR and DS). ``teacher_cache: auto`` uses a valid table when one exists, and otherwise
weighs costs measured on the worker (:func:`auto_decision`): building the table (views × images × the
teacher's forward pass per image) against running the teacher live, whose logits a CPU worker remembers
per batch for the later runs that draw the same batches (the other methods of a seed); ``on`` always,
``off`` never (the live teacher, nothing remembered). A table is keyed by what determines its values: the teacher
(its key and a digest of its weights), the training images (the dataset's identity and a digest of
the pixels), the view grid and normalisation, the compute precision and the storage dtype. Tables are
built once under a file lock, so the processes of an executor never build one twice.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from kdbench.contracts import DistillationMethod, ImageDataset, StreamedDataset
from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import RunSpec, content_key
from kdbench.run.components import Components
from kdbench.run.progress import progress_display
from kdbench.store import TeacherCacheRecord, TeacherOutputsMeta, TeacherOutputStore
from kdbench.train.batches import Batch, normalize, training_augmentation
from kdbench.train.callbacks import TrainingStart
from kdbench.train.evaluate import autocast
from kdbench.train.teacher_outputs import (
    CachedTeacherLogits,
    TeacherLogits,
    ViewGrid,
    build_teacher_logits,
    view_steps,
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
    """Where one run's teacher logits come from: a table, the live teacher remembering its logits (a CPU's
    ``auto``), or, with ``source`` None, the live teacher the engine runs itself."""

    source: TeacherLogits | None
    record: TeacherCacheRecord | None


# Reading one image's logits from a table in the page cache (an index_select on the memory map): 0.27 µs for
# digits' 162 × 1,437 × 10 table and 0.38 µs for a CIFAR-100-sized 162 × 50,000 × 100 one on the 2-core AMD EPYC,
# against 150-170 µs for resnet20's forward pass on a 16 px digit there: next to nothing, but counted.
LOOKUP_SECONDS_PER_IMAGE = 0.4e-6
# What a CPU worker may keep of the live teacher's remembered logits (digits' quickstart needs 2.6 MB: 3 seeds ×
# 15 epochs × 1,437 images × 10 classes); past it, batches not yet remembered run live every time.
REMEMBER_BYTES = 1 << 30


@dataclass(frozen=True)
class CacheCosts:
    """What ``teacher_cache: auto`` weighs for one run without a table, in seconds on this worker."""

    views: int  # the table's views of each training image
    images: int  # training images
    forward_s: float  # the teacher's forward pass per image in the run's batches, measured on this worker
    run_epochs: int  # epochs this run would run the teacher live (0: every batch remembered from an earlier run)
    plan_epochs: int  # teacher epochs on this training set over every run of the plan that could share a table
    spent_s: float = 0.0  # seconds this worker already ran this teacher live for earlier runs
    remembers: bool = True  # live logits are remembered per batch (CPU), so runs that repeat batches cost nothing
    lookup_s: float = LOOKUP_SECONDS_PER_IMAGE  # reading one image's logits from a table
    build_forward_s: float | None = None  # per image in the build's batches, when they differ from the run's

    @property
    def build_s(self) -> float:
        return self.views * self.images * (self.forward_s if self.build_forward_s is None else self.build_forward_s)

    @property
    def run_live_s(self) -> float:
        return self.run_epochs * self.images * self.forward_s

    @property
    def plan_live_s(self) -> float:
        return self.plan_epochs * self.images * self.forward_s

    def lookups_s(self, epochs: int) -> float:
        return epochs * self.images * self.lookup_s


def auto_decision(c: CacheCosts) -> tuple[bool, str]:
    """(build the table?, the reason for the record, naming the costs).

    Without remembered logits the plan's live cost is known: build when its teacher epochs cost more live
    than building the table and reading it back. With them (a CPU worker), the runs that repeat a seed's
    batches cost nothing live, and how many do is not known in advance, so the table is built only once
    running live can no longer be the cheaper way: when this run alone would cost more live than the table,
    or when what the worker has already spent live plus this run reaches the table's cost (so a worker never
    spends more than twice the cheaper way). A plan whose every epoch together costs less live than the
    table never builds one.
    """
    build = f"a {c.views}-view table ≈ {c.build_s:.1f} s to build"
    plan = f"the plan's {c.plan_epochs} teacher epochs ≈ {c.plan_live_s:.1f} s live"
    if c.plan_live_s <= c.build_s + c.lookups_s(c.plan_epochs):
        return False, f"auto: live teacher: {plan} ≤ {build}"
    if not c.remembers:
        return True, f"auto: table: {plan} > {build}"
    run = f"this run's {c.run_epochs} teacher epochs ≈ {c.run_live_s:.1f} s live"
    if c.run_live_s > c.build_s + c.lookups_s(c.run_epochs):
        return True, f"auto: table: {run} > {build}"
    if c.spent_s + c.run_live_s > c.build_s + c.lookups_s(c.run_epochs):
        return True, f"auto: table: {c.spent_s:.1f} s live so far + {run} > {build}"
    remembered = "remembered" if c.run_epochs == 0 else "remembered for runs with the same batches"
    return False, (f"auto: live teacher, {remembered}: {run} + {c.spent_s:.1f} s so far ≤ {build} "
                   f"({plan} if no run repeats another's batches)")


@dataclass
class RememberedLogits:
    """A worker's memory of the live teacher's logits, per batch, for one teacher, training set and view grid."""

    logits: dict[bytes, Tensor] = field(default_factory=dict)
    nbytes: int = 0
    full: bool = False  # REMEMBER_BYTES ran out: later batches are not remembered
    spent_s: float = 0.0  # seconds the teacher ran live for this worker's runs
    epochs: dict[tuple[int, int], int] = field(default_factory=dict)  # (seed, batch size) → epochs remembered

    def run_epochs(self, seed: int, batch_size: int, epochs: int) -> int:
        """Epochs of a run the teacher would still run live: the batches of an epoch are a function of
        (seed, epoch, batch size), so a run repeating another's seed and batch size finds them remembered."""
        return max(0, epochs - self.epochs.get((seed, batch_size), 0)) if not self.full else epochs


class RememberingTeacher:
    """The live teacher, remembering its logits per batch (training rows and views) in ``memory``.

    A frozen teacher in eval mode computes the same logits for the same batch every time, so a remembered
    batch is served exactly what the teacher would compute: the same values as the live teacher always,
    not only on the CPUs measured. Runs of one seed draw the same batches (docs/methods.md §11)."""

    def __init__(self, teacher: nn.Module, grid: ViewGrid, memory: RememberedLogits) -> None:
        self.teacher, self.grid, self.memory = teacher, grid, memory

    def __call__(self, batch: Batch) -> Tensor:
        view = self.grid.view_index(batch.augment)
        key = batch.indices.cpu().numpy().tobytes() + (view.cpu().numpy().tobytes() if view is not None else b"")
        known = self.memory.logits.get(key)
        if known is not None:
            return known.clone()
        start = time.perf_counter()
        with torch.no_grad():
            logits: Tensor = self.teacher(batch.images)
        self.memory.spent_s += time.perf_counter() - start
        if self.memory.nbytes + logits.nbytes <= REMEMBER_BYTES:
            self.memory.logits[key] = logits.detach().clone()
            self.memory.nbytes += logits.nbytes
        else:
            self.memory.full = True
        return logits


def compute_identity(device: str, mixed_precision: bool, channels_last: bool) -> str:
    """How a table's logits are computed, as far as it moves their last digits: bf16 autocast on CUDA, else
    float32; on a CPU also the memory format (its NHWC and NCHW kernels round differently, and a cached run must
    equal the live run bit for bit). On CUDA the tables were always built channels_last, so their identity (and
    every key hashed from it) stays what it was."""
    if device.startswith("cuda"):
        return "bf16-autocast" if mixed_precision else "float32"
    return "float32, channels_last" if channels_last else "float32"


def forward_seconds(teacher: nn.Module, data: ImageDataset, batch_size: int, device: str,
                    mixed_precision: bool, channels_last: bool) -> float:
    """The teacher's forward pass per image in batches of ``batch_size``, timed here on the first training
    images in the memory format the run uses: the fastest of three batches after a warm-up one (a shared
    machine's noise only slows a batch down). In eval mode and without grad: no buffer moves, no random draw."""
    x = normalize(data.train_images[:batch_size], data.mean, data.std)
    if channels_last:  # the teacher as the engine places it: the same module, its weights in NHWC
        x = x.contiguous(memory_format=torch.channels_last)
        teacher.to(memory_format=torch.channels_last)
    cuda = device.startswith("cuda")
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.inference_mode(), autocast(device, mixed_precision):
            teacher(x)
            times = []
            for _ in range(3):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                teacher(x)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        return min(times) / len(x)
    finally:
        teacher.train(was_training)


class TeacherOutputs:
    """Decides, per run, between cache and live teacher; builds, checks and loads tables for a worker."""

    def __init__(self, components: Components, store: TeacherOutputStore, quiet: bool = False) -> None:
        self.components = components
        self.store = store
        self.quiet = quiet
        # id → (object, digest) for teachers and datasets: the object is kept so its id is never reused
        self._digests: dict[int, tuple[object, str]] = {}
        self._loaded: tuple[str, Tensor] | None = None  # the last table served, on the worker's device
        self._remembered: dict[str, RememberedLogits] = {}  # table key → the live teacher's remembered logits
        self._forward: dict[tuple[str, int], float] = {}  # (table key, batch size) → forward seconds per image

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
        reason = "on" if mode == "on" else "auto: table exists"
        if mode == "auto" and not isinstance(status, TeacherOutputsMeta):
            build, reason = self._decide(spec, key, teacher, data, grid)
            if not build:
                return ServedLogits(self._live(spec, key, teacher, grid), TeacherCacheRecord(used=False, reason=reason))
        meta, built = status, None
        if not isinstance(meta, TeacherOutputsMeta):
            meta = self._build(key, identity, shape, dtype, teacher, data, grid, spec.teacher.arch, meta)
            built = meta.build_seconds
        table = self._place(meta)
        if table is None:
            return ServedLogits(None, TeacherCacheRecord(used=False, reason="out of device memory: live teacher",
                                                         key=key, dtype=dtype, views=grid.count))
        record = TeacherCacheRecord(used=True, reason=reason, key=key, dtype=dtype, views=grid.count,
                                    built_seconds=built, max_abs_error=meta.max_abs_error,
                                    max_rel_error=meta.max_rel_error)
        return ServedLogits(CachedTeacherLogits(table, grid), record)

    def _decide(self, spec: RunSpec, key: str, teacher: nn.Module, data: ImageDataset,
                grid: ViewGrid) -> tuple[bool, str]:
        """``auto`` without a table: build one, or run the teacher live (:func:`auto_decision`)."""
        device, options = self.components.device, self.components.options
        remembers = device.startswith("cpu")
        memory = self._remembered.get(key, RememberedLogits())
        build_batch = options.eval_batch_size if device.startswith("cuda") else CPU_BUILD_BATCH
        live_batch = min(spec.recipe.batch_size, data.num_train)

        def forward(batch: int) -> float:  # timed once per teacher and batch size (the quickstart's are both 64)
            if (key, batch) not in self._forward:
                self._forward[(key, batch)] = forward_seconds(teacher, data, batch, device, options.mixed_precision,
                                                                options.channels_last)
            return self._forward[(key, batch)]

        epochs = spec.recipe.epochs
        costs = CacheCosts(
            views=grid.count, images=data.num_train, forward_s=forward(live_batch),
            build_forward_s=None if build_batch == live_batch else forward(min(build_batch, data.num_train)),
            run_epochs=memory.run_epochs(spec.seed, spec.recipe.batch_size, epochs) if remembers else epochs,
            plan_epochs=max(spec.teacher_passes, epochs), spent_s=memory.spent_s, remembers=remembers)
        return auto_decision(costs)

    def _live(self, spec: RunSpec, key: str, teacher: nn.Module, grid: ViewGrid) -> TeacherLogits | None:
        """``auto``'s live teacher: remembering its logits on a CPU (None: the engine's plain live teacher)."""
        if not self.components.device.startswith("cpu"):
            return None
        memory = self._remembered.setdefault(key, RememberedLogits())
        if not memory.full:
            at = (spec.seed, spec.recipe.batch_size)
            memory.epochs[at] = max(memory.epochs.get(at, 0), spec.recipe.epochs)
        return RememberingTeacher(teacher, grid, memory)

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
            "compute": compute_identity(device, options.mixed_precision, options.channels_last),
            "dtype": dtype,
        }

    def _digest(self, owner: object, tensors: Callable[[], list[tuple[str, Tensor]]]) -> str:
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
            # an interrupted build of this table goes on from its finished views, with its batch size
            writer = self.store.writer(key, shape, dtype, identity=identity, batch_size=batch_size)
            done = writer.views_done
            progress = progress_display(self.quiet, unit="view")
            progress.start(TrainingStart(f"teacher outputs {arch} ({grid.count} views)", grid.count,
                                         view_steps(data.num_train, writer.batch_size), done + 1))
            try:  # the teacher and the data are on the worker's device already
                build_teacher_logits(teacher, data, grid, writer.write, batch_size=writer.batch_size,
                                     mixed_precision=options.mixed_precision,
                                     channels_last=options.channels_last, step=progress.step,
                                     first_view=done, view_done=writer.view_done)
            except BaseException:  # Ctrl-C or an error: the finished views stay for the next build
                writer.close()
                raise
            finally:
                progress.finish()
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
