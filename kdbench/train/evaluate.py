"""Devices, mixed precision and top-1 evaluation: what both training and scoring need."""

from __future__ import annotations

import contextlib

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


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 1024,
    mixed_precision: bool = True,
) -> float:
    """Top-1 accuracy in percent, in eval mode, restoring the model's mode afterwards.

    The count of correct predictions stays on the device until the end: one host sync per evaluation.
    """
    if images.shape[0] == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    device = str(images.device)
    for batch in iterate_batches(images, labels, batch_size=batch_size, mean=mean, std=std, shuffle=False):
        with autocast(device, mixed_precision):
            logits = model(batch.images)
        correct += (logits.argmax(dim=1) == batch.labels).sum()
    model.train(was_training)
    return 100.0 * int(correct) / images.shape[0]
