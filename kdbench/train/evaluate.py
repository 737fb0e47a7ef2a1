"""Devices, mixed precision and top-1/top-5 evaluation: what both training and scoring need."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kdbench.errors import KdbenchError
from kdbench.train.batches import Batch, iterate_batches
from kdbench.train.sources import AnyDataset, SourceSettings, open_source


def resolve_device(name: str) -> str:
    """``auto`` → cuda when torch sees one, else cpu; asking for cuda without one is a user error. A group of
    GPUs (``cuda:0,1``, given to a run trained on several processes) is its first GPU for everything else."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KdbenchError(f"--device {name} asked for, but torch sees no CUDA device")
    return name.split(",")[0]


# A CPU evaluates small networks fastest in small batches (resnet8 on digits at 16 px: 360 test images in 19 ms
# at 128, 38 ms in one batch of 1024; the activations of a large batch leave the cache); a GPU wants large
# ones. The logits do not depend on the batch (bit-identical on the CPUs measured), so neither do the counts.
CPU_EVAL_BATCH = 128


def eval_batch_size(device: str, asked: int) -> int:
    """The evaluation batch on ``device``: ``asked`` (``--eval-batch-size``), at most ``CPU_EVAL_BATCH`` on a CPU."""
    return min(asked, CPU_EVAL_BATCH) if device.startswith("cpu") else asked


def autocast(device: str, enabled: bool) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU numbers stay fp32 and reproducible)."""
    if enabled and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and top-5 accuracy in percent (top-5 is top-min(5, classes): 100 with five classes or fewer)."""

    top1: float
    top5: float


    @classmethod
    def of_counts(cls, counts: Tensor) -> Accuracy:
        """From ``[top-1 hits, top-5 hits, samples]`` (summed over batches, or over DDP ranks)."""
        hits1, hits5, n = (int(v) for v in counts.tolist())
        if n == 0:
            return cls(float("nan"), float("nan"))
        return cls(100.0 * hits1 / n, 100.0 * hits5 / n)


@torch.inference_mode()
def hit_counts(model: nn.Module, batches: Iterable[Batch], device: str, mixed_precision: bool = True) -> Tensor:
    """``[top-1 hits, top-5 hits, samples]`` of ``model`` in eval mode over ``batches``, as one int64 tensor
    on ``device`` (one host sync when the caller reads it); the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    counts = torch.zeros(3, dtype=torch.long, device=device)
    for batch in batches:
        with autocast(device, mixed_precision):
            logits = model(batch.images)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == batch.labels[:, None]
        counts += torch.stack([hits[:, 0].sum(), hits.any(dim=1).sum(), torch.tensor(len(batch), device=device)])
    model.train(was_training)
    return counts


def accuracy(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 1024,
    mixed_precision: bool = True,
) -> Accuracy:
    """Top-1 and top-5 accuracy of ``model`` on images held as a tensor, in eval mode."""
    batches = iterate_batches(images, labels, batch_size=batch_size, mean=mean, std=std, shuffle=False)
    return Accuracy.of_counts(hit_counts(model, batches, str(images.device), mixed_precision))


def split_accuracy(model: nn.Module, data: AnyDataset, split: str, device: str, *, batch_size: int = 1024,
                   loader_workers: int = 4, mixed_precision: bool = True) -> Accuracy:
    """Top-1/top-5 of ``model`` on one split of either kind of dataset (a teacher checked once on load)."""
    source = open_source(data, SourceSettings.evaluation(device, eval_batch_size(device, batch_size), loader_workers))
    try:
        return Accuracy.of_counts(hit_counts(model, source.eval_batches(split), device, mixed_precision))
    finally:
        source.close()
