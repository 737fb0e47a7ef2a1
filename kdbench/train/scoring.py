"""The teacher's view of the training set, computed once for the data-value estimators (docs/methods.md §6a).

Estimators see the teacher only through :class:`~kdbench.contracts.ScoringInputs`: penultimate
features and logits on un-augmented images (float64, on the CPU), the classifier head, and the same
for checkpoints saved while the teacher trained (TracIn). The images come through the engine's batch
sources, so a dataset streamed from disk is scored like one held on the device (evaluation transforms).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdbench.contracts import CheckpointOutputs, ScoringInputs, SplitOutputs, TeacherNetwork
from kdbench.contracts.models import classifier_of
from kdbench.errors import KdbenchError
from kdbench.train.sources import AnyDataset, BatchSource, SourceSettings, open_source


@torch.inference_mode()
def split_outputs(model: nn.Module, source: BatchSource, split: str) -> SplitOutputs:
    """Penultimate features and logits of ``model`` (eval mode) on the un-augmented images of ``split``, as
    float64 on CPU in sample order, from data held on the device or streamed from disk. Scores need every
    sample: a file that cannot be decoded stops scoring with one line."""
    was_training = model.training
    model.eval()
    feats, logits, labels, indices, skipped = [], [], [], [], 0
    for batch in source.eval_batches(split):
        skipped += batch.skipped
        f, z = model(batch.images, features=True)
        feats.append(f[-1].double().cpu())
        logits.append(z.double().cpu())
        labels.append(batch.labels.cpu())
        indices.append(batch.indices.cpu())
    model.train(was_training)
    if skipped:
        raise KdbenchError(f"scoring the {split} split: {skipped} image file(s) could not be decoded; every sample "
                           "needs a score")
    order = torch.argsort(torch.cat(indices))
    return SplitOutputs(torch.cat(feats)[order], torch.cat(logits)[order], torch.cat(labels)[order])


def head_of(model: nn.Module) -> tuple[Tensor, Tensor]:
    head = classifier_of(model)
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
    return head.weight.detach().double().cpu(), bias.detach().double().cpu()


def scoring_inputs(
    teacher: nn.Module,
    data: AnyDataset,
    weight_decay: float,
    checkpoints: Sequence[tuple[int, float, nn.Module]] = (),
    seed: int = 0,
    batch_size: int = 1024,
    loader_workers: int = 4,
    network: bool = False,
) -> ScoringInputs:
    """Everything an estimator may use, computed once from the teacher (and its training checkpoints); with
    ``network``, also the teacher as a network and the splits' images (:class:`TeacherNetwork`)."""
    device = str(next(teacher.parameters()).device)
    source = open_source(data, SourceSettings.evaluation(device, batch_size, loader_workers))
    try:
        train = split_outputs(teacher, source, "train")
        val = split_outputs(teacher, source, "val") if source.size("val") else None
        ckpts = []
        for epoch, lr, model in checkpoints:
            weight, bias = head_of(model)
            ckpts.append(CheckpointOutputs(epoch, lr, split_outputs(model, source, "train"), weight, bias))
        whole = teacher_network(teacher, source, checkpoints) if network else None
    finally:
        source.close()
    weight, bias = head_of(teacher)
    return ScoringInputs(train, weight, bias, weight_decay, val, tuple(ckpts), seed, whole)


def split_images(source: BatchSource, split: str) -> tuple[Tensor, Tensor]:
    """The normalised, un-augmented images of a split and their labels, float32 on the CPU in sample order."""
    images, labels, indices = [], [], []
    for batch in source.eval_batches(split):
        images.append(batch.images.float().cpu().contiguous())
        labels.append(batch.labels.cpu())
        indices.append(batch.indices.cpu())
    order = torch.argsort(torch.cat(indices))
    return torch.cat(images)[order], torch.cat(labels)[order]


def teacher_network(teacher: nn.Module, source: BatchSource,
                    checkpoints: Sequence[tuple[int, float, nn.Module]]) -> TeacherNetwork:
    """Copies of the teacher and its checkpoints as CPU float32 modules in eval mode (an estimator may
    differentiate through them; the run's own teacher is untouched), with the training and validation images."""
    def copied_for_scoring(model: nn.Module) -> nn.Module:
        copied = copy.deepcopy(model).float().cpu().eval()
        copied.to(memory_format=torch.contiguous_format)
        return copied.requires_grad_(True)

    train_images, train_labels = split_images(source, "train")
    val_images, val_labels = split_images(source, "val") if source.size("val") else (None, None)
    return TeacherNetwork(copied_for_scoring(teacher), train_images, train_labels, val_images, val_labels,
                          tuple((epoch, lr, copied_for_scoring(model)) for epoch, lr, model in checkpoints))
