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

from kdbench.errors import KdbenchError


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


def wrap_student(student: nn.Module, shard: Shard, device: str, *, find_unused_parameters: bool = False) -> nn.Module:
    """The student under DDP when there are several ranks (gradients all-reduced during backward).
    ``find_unused_parameters``: some of the student's parameters may get no gradient (a student judged through its
    method's head leaves its own classifier out of the loss)."""
    if not shard.distributed:
        return student
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(student, device_ids=ids, find_unused_parameters=find_unused_parameters)


def average_gradients(parameters: Iterable[nn.Parameter], shard: Shard) -> None:
    """Average the gradients of parameters outside the DDP module over the ranks (one flat all-reduce).

    A rank whose share of a batch is empty computes no method loss, so its parameters have no gradient:
    it contributes zeros, and a parameter keeps ``grad=None`` only when no rank gave it one (as one process
    would: the optimizer then skips it)."""
    if not shard.distributed:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    has_grad = [p.grad is not None for p in params]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flags = torch.tensor(has_grad, dtype=grads[0].dtype, device=grads[0].device)
    flat = torch.cat([*(g.reshape(-1) for g in grads), flags])
    dist.all_reduce(flat)
    flat /= shard.world
    # Only a rank missing some gradient reads the flags back (a host sync, at most once per epoch).
    given = flat[-len(params):].tolist() if not all(has_grad) else has_grad
    offset = 0
    for p, g, mine, anyone in zip(params, grads, has_grad, given, strict=True):
        if mine:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
        elif anyone:
            p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def shares_of_global_batch(counts: Tensor, shard: Shard) -> tuple[Tensor, Tensor]:
    """Each of this rank's ``counts`` as a fraction of its sum over the ranks, and those sums.

    A loss part that is a mean over ``c_r`` samples of rank r's slice, weighted by ``world · c_r / Σ c``,
    makes DDP's rank-averaged gradient the gradient of the mean over the global batch, however unevenly the
    batch splits (docs/methods.md §1)."""
    totals = sum_over_ranks(counts.clone(), shard)
    return counts / totals.clamp(min=1), totals


def broadcast_buffers(module: nn.Module, shard: Shard) -> None:
    """Every rank takes rank 0's buffers (BatchNorm's running statistics, which each rank's last step moved
    with its own slice), so every rank evaluates the model that rank 0 saves."""
    if shard.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def check_shard(batch_size: int, num_train: int, shard: Shard) -> None:
    """Every rank must get samples from the first batch of an epoch on (a later batch may leave some empty)."""
    if shard.distributed and min(batch_size, num_train) < shard.world:
        raise KdbenchError(f"a run on {shard.world} processes needs batch_size and the training set to hold at "
                           f"least {shard.world} samples (batch_size {batch_size}, {num_train} training samples)")


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
