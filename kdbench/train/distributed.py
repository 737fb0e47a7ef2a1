"""What the engine needs to train one run over several processes (DistributedDataParallel).

The process group itself is set up by the caller (``kdbench.run.distributed``); the engine only reads its
:class:`Shard` and, when there is more than one rank, wraps the student in DDP, averages the gradients of a
method's own modules (which DDP does not see: they are used in the loss, not in the student's forward)
and sums the epoch's counts over the ranks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Shard:
    """Which of ``world`` processes this one is; rank 0 is the one that writes."""

    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        return self.rank == 0


def wrap_student(student: nn.Module, shard: Shard, device: str) -> nn.Module:
    """The student under DDP when there are several ranks (gradients all-reduced during backward)."""
    if not shard.distributed:
        return student
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(student, device_ids=ids)


def average_gradients(parameters: Iterable[nn.Parameter], shard: Shard) -> None:
    """Average the gradients of parameters outside the DDP module over the ranks (one flat all-reduce)."""
    if not shard.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= shard.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def sum_over_ranks(values: Tensor, shard: Shard) -> Tensor:
    """``values`` summed over the ranks (in place; unchanged with one rank)."""
    if shard.distributed:
        dist.all_reduce(values)
    return values


def any_rank(flag: bool, shard: Shard, device: str) -> bool:
    """True when ``flag`` is true on some rank: every rank takes the same branch (stop, diverge)."""
    if not shard.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value)
    return bool(value.item())
