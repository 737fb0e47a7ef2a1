"""Where a run's teacher logits come from: the live teacher, or the exact teacher-output cache.

The training images live on the device and augmentation is a per-sample ``(dx, dy, flip)``
(``kdbench.train.batches``), so a training image has a finite set of augmented *views*: 9 × 9 crop
offsets × 2 flips = 162 with CIFAR's pad-4 crop. A frozen teacher in eval mode gives the same logits for
the same view every time, so they can be computed once per (teacher, dataset, augmentation, precision)
and served by ``(index, view)`` instead of running the teacher on every step of every run
(docs/methods.md §11). Here: the view grid, building the logits of every view, and the two sources the
engine reads teacher logits from. Files are the store's business (``kdbench.store.teacher_outputs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from kdbench.contracts import ImageDataset
from kdbench.train.batches import AugmentParams, Batch, PadCropFlip, normalize
from kdbench.train.evaluate import autocast


@dataclass(frozen=True)
class ViewGrid:
    """Every augmented view the engine can draw: ``(2·padding + 1)²`` offsets × (2 if flip else 1).

    View ``v`` of a sample is ``v = (dy · side + dx) · flips + flip``; without augmentation there is one
    view, the image itself.
    """

    augment: bool
    padding: int = 4
    flip: bool = True

    @classmethod
    def of(cls, augmenter: PadCropFlip | None) -> ViewGrid:
        if augmenter is None:
            return cls(augment=False, padding=0, flip=False)
        return cls(augment=True, padding=augmenter.padding, flip=augmenter.flip)

    @property
    def side(self) -> int:
        return 2 * self.padding + 1

    @property
    def flips(self) -> int:
        return 2 if self.flip else 1

    @property
    def count(self) -> int:
        return self.side**2 * self.flips if self.augment else 1

    def identity(self) -> dict[str, object]:
        return {"augment": self.augment, "padding": self.padding, "flip": self.flip}

    def view_index(self, params: AugmentParams | None) -> Tensor | None:
        """The view of every row of a batch (None: the batch is not augmented, view 0)."""
        if params is None or not self.augment:
            return None
        view = params.dy * self.side + params.dx
        return view * self.flips + params.flip.long() if self.flip else view

    def params(self, views: Tensor) -> AugmentParams:
        """The augmentation parameters of each view in ``views`` (int64, any device)."""
        flip, offset = (views % 2, views // 2) if self.flip else (torch.zeros_like(views), views)
        return AugmentParams(dx=offset % self.side, dy=offset // self.side, flip=flip.bool())


def build_teacher_logits(
    teacher: nn.Module,
    data: ImageDataset,
    grid: ViewGrid,
    write: Callable[[int, Tensor], None],
    *,
    batch_size: int,
    mixed_precision: bool,
    channels_last: bool = False,
    step: Callable[[], None] = lambda: None,
    first_view: int = 0,
    view_done: Callable[[int], None] = lambda view: None,
) -> None:
    """Run ``teacher`` once over every view of every training image: view after view, each in batches of
    ``batch_size`` images (the last batch of a view may be smaller; a batch never spans two views).

    Row ``r = view · N + index`` of the flattened ``views·N × classes`` table is the teacher's logits for
    training image ``index`` under ``view``. ``write(first_row, logits)`` receives each batch's float32
    logits: the caller decides where they go (a memory-mapped file, a device tensor); ``view_done(view)``
    is called once every row of ``view`` was written. The pixels are the ones the engine's batches make:
    same crop, same flip, same normalisation. A view's batches depend only on the view and ``batch_size``,
    so a build that starts at ``first_view`` (going on with one interrupted after that many views) computes
    exactly the rows that a build from view 0 computes for those views.
    """
    images, n = data.train_images, data.num_train
    device = images.device
    augmenter = PadCropFlip(grid.padding, grid.flip) if grid.augment else None
    if channels_last:  # as the engine places the live teacher: the same kernels, the same last digits
        teacher.to(memory_format=torch.channels_last)
    teacher.eval()
    with torch.inference_mode():
        for view in range(first_view, grid.count):
            for first in range(0, n, batch_size):
                index = torch.arange(first, min(first + batch_size, n), device=device)
                x = images[index]
                if augmenter is not None:
                    x = augmenter(x, grid.params(torch.full_like(index, view)))
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(str(device), mixed_precision):
                    logits = teacher(normalize(x, data.mean, data.std))
                write(view * n + first, logits.float())
                step()
            view_done(view)


def view_steps(num_train: int, batch_size: int) -> int:
    """How many teacher batches one view of a build runs."""
    return math.ceil(num_train / batch_size)


def build_steps(grid: ViewGrid, num_train: int, batch_size: int) -> int:
    """How many teacher batches a whole build runs (for its progress bar)."""
    return grid.count * view_steps(num_train, batch_size)


class TeacherLogits(Protocol):
    """What the engine asks for on each step when the method reads only the teacher's logits."""

    def __call__(self, batch: Batch) -> Tensor: ...


class LiveTeacher:
    """The teacher's forward pass on the batch, without grad: the path every method can take."""

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher = teacher

    def __call__(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            logits: Tensor = self.teacher(batch.images)
        return logits


class CachedTeacherLogits:
    """Teacher logits read from a ``views × samples × classes`` table by (index, view): one gather.

    The table may live in device memory (CUDA) or in a memory-mapped file shared by every process on
    the machine (CPU); the rows come back on the batch's device.
    """

    def __init__(self, table: Tensor, grid: ViewGrid) -> None:
        if table.ndim != 3 or table.shape[0] != grid.count:
            raise ValueError(f"a teacher-output table for {grid.count} views, got shape {tuple(table.shape)}")
        self.grid = grid
        self.num_train = int(table.shape[1])
        self._flat = table.reshape(-1, table.shape[2])  # a view, not a copy (the table is contiguous)

    def __call__(self, batch: Batch) -> Tensor:
        rows = batch.indices
        view = self.grid.view_index(batch.augment)
        if view is not None:
            rows = view * self.num_train + rows
        rows = rows.to(self._flat.device)
        return self._flat.index_select(0, rows).to(batch.images.device, non_blocking=True).float()
