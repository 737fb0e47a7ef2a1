"""Data Selection's split (the paper's Algorithm 1, docs/methods.md §6): which samples go to the teacher."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import torch
from torch import Tensor

from kdbench.contracts import ImageDataset
from kdbench.errors import KdbenchError
from kdbench.train.sources import AnyDataset


def random_subset(count: int, num_samples: int, seed: int, stream: int) -> Tensor:
    """``count`` distinct sample indices drawn uniformly with ``seed``. Stream 2 seeds the generator with a hash
    of ``seed``; stream 1 (records written before it) with ``seed`` itself, which made the subset the first
    ``count`` of the permutation that label noise with the same seed flips first: on noisy data, exactly
    flipped samples."""
    if stream not in (1, 2):
        raise ValueError(f"unknown random-selection stream {stream}")
    if stream == 2:
        digest = hashlib.sha256(f"kdbench random selection {seed}".encode()).digest()
        seed = int.from_bytes(digest[:8], "little") >> 1
    return torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))[:count]


def select(scores: Tensor | None, fraction: float, order: str, seed: int, num_samples: int,
           stream: int = 2) -> Tensor:
    """The D_t mask: ``round(fraction·N)`` samples with the highest / lowest scores, or a random subset
    (:func:`random_subset`, from ``stream``).

    Ties are broken by sample index (stable sort), so the split is a pure function of its inputs.
    """
    count = int(round(fraction * num_samples))
    if order == "random":
        chosen = random_subset(count, num_samples, seed, stream)
    else:
        assert scores is not None
        ranked = torch.sort(scores.double().cpu(), descending=(order == "highest"), stable=True).indices
        chosen = ranked[:count]
    mask = torch.zeros(num_samples, dtype=torch.bool)
    mask[chosen] = True
    return mask


def training_subset(data: AnyDataset, keep: Tensor) -> ImageDataset:
    """``data`` with only the training samples ``keep`` marks (a bool mask over the training split), in their
    order; validation and test splits unchanged. What ``mode: drop`` trains on: sample ``i`` of the subset is
    the ``i``-th kept one, so everything indexed by sample (a teacher-output table, CRD's memory) is the
    subset's own."""
    if not isinstance(data, ImageDataset):
        raise KdbenchError(f"Data Selection with mode drop needs a dataset held in memory; {data.name} is streamed "
                           "from disk")
    if keep.dtype != torch.bool or keep.shape != (data.num_train,):
        raise ValueError(f"keep must be a bool mask of {data.num_train} training samples, got {keep.dtype} "
                         f"{tuple(keep.shape)}")
    index = torch.nonzero(keep.cpu()).flatten().to(data.train_images.device)
    flipped = data.train_flipped[index.to(data.train_flipped.device)] if data.train_flipped is not None else None
    return replace(data, train_images=data.train_images[index], train_labels=data.train_labels[index],
                   train_flipped=flipped)
