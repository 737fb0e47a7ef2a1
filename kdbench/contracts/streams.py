"""The contract of a dataset streamed from disk batch by batch (ImageNet-sized image folders).

``ImageDataset`` holds every split as one tensor on the device; that is what makes CIFAR and digits fast,
and what a 1.28-million-image training set cannot do. A :class:`StreamedDataset` instead opens a
:class:`BatchStream` per split: batches decoded and transformed in worker processes, already normalised,
handed to the engine on the CPU (pinned when the run trains on a GPU). The engine trains from either
kind through one loop (``kdbench.train.sources``).

What makes a streamed epoch reproducible is the contract of ``BatchStream.epoch(seed)``: the order of the
samples and every random crop and flip are functions of ``(seed, sample index)`` only, so an epoch does
not depend on the number of loader workers, on which DDP rank reads which shard, or on whether the run
was resumed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

STREAM_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class StreamRequest:
    """How to cut one split into batches: the execution settings a stream is opened with.

    ``batch_size`` is the *global* batch; with ``world`` > 1 each rank gets its share of every global batch
    (rows ``rank, rank + world, ...``), so the ranks together see exactly the batches one process would.
    """

    batch_size: int
    shuffle: bool
    augment: bool  # training transforms (random crop and flip) rather than evaluation transforms
    drop_last: bool = False
    workers: int = 0
    pin_memory: bool = False
    rank: int = 0
    world: int = 1


@dataclass(frozen=True)
class StreamedBatch:
    """One batch of a stream, on the CPU: normalised float images, labels, split indices, and how many of
    the batch's files could not be decoded and were left out (an unreadable file is counted, not fatal)."""

    images: Tensor
    labels: Tensor
    indices: Tensor
    skipped: int = 0


class BatchStream(Protocol):
    """The batches of one split, opened once per run (its worker processes persist across epochs)."""

    def __len__(self) -> int:
        """Batches per pass for this rank."""
        ...

    def epoch(self, seed: int) -> Iterator[StreamedBatch]:
        """One pass; order and augmentation depend only on ``seed`` and each sample's index."""
        ...

    def close(self) -> None:
        """Stop the worker processes."""
        ...


class StreamedDataset(ABC):
    """A dataset read from disk per batch. The attributes mirror ``ImageDataset``'s so that what only needs
    the data's shape (a method's context, the models) reads either kind the same way."""

    name: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_shape: tuple[int, int, int]  # (C, H, W) after the transforms: what models are built for
    train_labels: Tensor  # labels of the training split by index (CRD's negatives, Data Selection's bookkeeping)
    train_flipped: Tensor | None = None  # label noise is never put into streamed labels (docs/methods.md §12)

    @property
    def num_train(self) -> int:
        return int(self.train_labels.shape[0])

    @abstractmethod
    def size(self, split: str) -> int:
        """Samples in ``split`` (``"train"``, ``"val"`` or ``"test"``; ``"val"`` may have 0)."""

    @abstractmethod
    def open(self, split: str, request: StreamRequest) -> BatchStream:
        """A stream of ``split``'s batches; the caller closes it."""
