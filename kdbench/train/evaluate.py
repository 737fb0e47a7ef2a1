"""Devices, mixed precision and top-1/top-5 evaluation: what both training and scoring need."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kdbench.errors import KdbenchError
from kdbench.train.batches import iterate_batches


def resolve_device(name: str) -> str:
    """``auto`` → cuda when torch sees one, else cpu; asking for cuda without one is a user error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KdbenchError(f"--device {name} asked for, but torch sees no CUDA device")
    return name


def autocast(device: str, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU numbers stay fp32 and reproducible)."""
    if enabled and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and top-5 accuracy in percent (top-5 is top-min(5, classes): 100 with five classes or fewer)."""

    top1: float
    top5: float


@torch.inference_mode()
def accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 1024,
    mixed_precision: bool = True,
) -> Accuracy:
    """Top-1 and top-5 accuracy in eval mode, restoring the model's mode afterwards.

    The counts stay on the device until the end: one host sync per evaluation.
    """
    if images.shape[0] == 0:
        return Accuracy(float("nan"), float("nan"))
    was_training = model.training
    model.eval()
    correct1 = torch.zeros((), dtype=torch.long, device=images.device)
    correct5 = torch.zeros((), dtype=torch.long, device=images.device)
    device = str(images.device)
    for batch in iterate_batches(images, labels, batch_size=batch_size, mean=mean, std=std, shuffle=False):
        with autocast(device, mixed_precision):
            logits = model(batch.images)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == batch.labels[:, None]
        correct1 += hits[:, 0].sum()
        correct5 += hits.any(dim=1).sum()
    model.train(was_training)
    n = images.shape[0]
    return Accuracy(100.0 * int(correct1) / n, 100.0 * int(correct5) / n)
