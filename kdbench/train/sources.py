"""Where a run's batches come from: data held on the device, or streamed from disk. The engine trains and
evaluates through one :class:`BatchSource` and never asks which kind it has.

* :class:`HeldSource` (CIFAR, digits, synthetic): the batched pad-crop-flip of ``kdbench.train.batches``
  over uint8 tensors on the device; an epoch's permutation and crops are drawn from ``(seed, epoch)``, and so
  is the strong view (``kdbench.train.strong_view``) when the method needs one.
* :class:`StreamedSource` (image folders): the dataset's own streams (decoding in worker processes, opened
  once per run), moved to the device batch by batch; an epoch is again a function of ``(seed, epoch)``.

Both give each DDP rank its share of every global batch, so a run on N processes sees the batches that
one process would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kdbench.contracts import BatchStream, ImageDataset, StreamedDataset, StreamRequest
from kdbench.errors import KdbenchError
from kdbench.train.batches import Batch, iterate_batches, training_augmentation
from kdbench.train.distributed import Shard
from kdbench.train.strong_view import StrongAugment, strong_view_seed

#: Either kind of dataset a run can train on.
AnyDataset = ImageDataset | StreamedDataset


@dataclass(frozen=True)
class SourceSettings:
    """How to batch a run's data: the recipe's part (batch, augmentation, full batches) and the execution's."""

    batch_size: int
    augment: bool
    drop_last: bool
    device: str
    eval_batch_size: int = 1024
    channels_last: bool = False
    loader_workers: int = 4
    shard: Shard = Shard()
    strong_view: bool = False  # every training batch also carries its rows' strong view (needs_strong_view)

    @classmethod
    def evaluation(cls, device: str, batch_size: int, loader_workers: int) -> SourceSettings:
        """Settings of a pass that only evaluates (a teacher measured once, the scoring pass)."""
        return cls(batch_size=batch_size, augment=False, drop_last=False, device=device, eval_batch_size=batch_size,
                   loader_workers=loader_workers)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order and augmentation: the same for every kind of source and every rank."""
    return seed * 1_000_003 + epoch


class HeldSource:
    """Batches of an ``ImageDataset`` already on the device."""

    streamed = False

    def __init__(self, data: ImageDataset, settings: SourceSettings) -> None:
        self.data, self.settings = data, settings
        n, b = data.num_train, settings.batch_size
        self.steps = n // b if settings.drop_last else math.ceil(n / b)

    def size(self, split: str) -> int:
        return int(self.data.split(split)[0].shape[0])

    def train_epoch(self, seed: int, epoch: int) -> Iterator[Batch]:
        s, data = self.settings, self.data
        return iterate_batches(
            data.train_images, data.train_labels, batch_size=s.batch_size, mean=data.mean, std=data.std,
            shuffle=True, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)),
            augment=training_augmentation(s.augment), drop_last=s.drop_last, channels_last=s.channels_last,
            rank=s.shard.rank, world=s.shard.world, **self._strong(seed, epoch))

    def _strong(self, seed: int, epoch: int) -> dict[str, Any]:
        """The strong view's policy and its own generator for the epoch (nothing without a strong view)."""
        if not self.settings.strong_view:
            return {}
        return {"strong": StrongAugment(),
                "strong_generator": torch.Generator().manual_seed(strong_view_seed(epoch_seed(seed, epoch)))}

    def eval_batches(self, split: str) -> Iterator[Batch]:
        s = self.settings
        images, labels = self.data.split(split)
        return iterate_batches(images, labels, batch_size=s.eval_batch_size, mean=self.data.mean, std=self.data.std,
                               shuffle=False, rank=s.shard.rank, world=s.shard.world)

    def close(self) -> None:
        pass


class StreamedSource:
    """Batches of a ``StreamedDataset``: one stream per split, opened on first use and kept for the run."""

    streamed = True

    def __init__(self, data: StreamedDataset, settings: SourceSettings) -> None:
        if settings.strong_view:
            raise KdbenchError("a strong augmented view (a method with needs_strong_view, e.g. mlkd) is made for "
                               "datasets held in memory only, not for a streamed image folder")
        self.data, self.settings = data, settings
        self._streams: dict[str, BatchStream] = {}

    @property
    def steps(self) -> int:
        return len(self._stream("train"))

    def size(self, split: str) -> int:
        return self.data.size(split)

    def _stream(self, split: str) -> BatchStream:
        if split not in self._streams:
            s, train = self.settings, split == "train"
            request = StreamRequest(
                batch_size=s.batch_size if train else s.eval_batch_size, shuffle=train, augment=train and s.augment,
                drop_last=train and s.drop_last, workers=s.loader_workers,
                pin_memory=s.device.startswith("cuda"), rank=s.shard.rank, world=s.shard.world)
            self._streams[split] = self.data.open(split, request)
        return self._streams[split]

    def _to_device(self, images: Tensor, labels: Tensor, indices: Tensor, skipped: int) -> Batch:
        s = self.settings
        images = images.to(s.device, non_blocking=True)
        if s.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return Batch(images=images, labels=labels.to(s.device, non_blocking=True),
                     indices=indices.to(s.device, non_blocking=True), augment=None, skipped=skipped)

    def train_epoch(self, seed: int, epoch: int) -> Iterator[Batch]:
        for b in self._stream("train").epoch(epoch_seed(seed, epoch)):
            yield self._to_device(b.images, b.labels, b.indices, b.skipped)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        for b in self._stream(split).epoch(0):
            yield self._to_device(b.images, b.labels, b.indices, b.skipped)

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()


BatchSource = HeldSource | StreamedSource


def open_source(data: AnyDataset, settings: SourceSettings) -> BatchSource:
    """The source for ``data``'s kind; the caller closes it (a streamed source stops its workers)."""
    return StreamedSource(data, settings) if isinstance(data, StreamedDataset) else HeldSource(data, settings)
