"""The teacher's view of the training set, computed once for the data-value estimators (docs/methods.md §6a).

Estimators see the teacher only through :class:`~kdbench.contracts.ScoringInputs`: penultimate
features and logits on un-augmented images (float64, on the CPU), the classifier head, and the same
for checkpoints saved while the teacher trained (TracIn).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdbench.contracts import CheckpointOutputs, ImageDataset, ScoringInputs, SplitOutputs
from kdbench.contracts.models import classifier_of
from kdbench.train.batches import iterate_batches


@torch.inference_mode()
def split_outputs(model: nn.Module, images: Tensor, labels: Tensor, data: ImageDataset,
                  batch_size: int = 1024) -> SplitOutputs:
    """Penultimate features and logits of ``model`` (eval mode) on un-augmented images, as float64 on CPU."""
    was_training = model.training
    model.eval()
    feats, logits = [], []
    for batch in iterate_batches(images, labels, batch_size=batch_size, mean=data.mean, std=data.std, shuffle=False):
        f, z = model(batch.images, features=True)
        feats.append(f[-1].double().cpu())
        logits.append(z.double().cpu())
    model.train(was_training)
    return SplitOutputs(torch.cat(feats), torch.cat(logits), labels.cpu())


def head_of(model: nn.Module) -> tuple[Tensor, Tensor]:
    head = classifier_of(model)
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
    return head.weight.detach().double().cpu(), bias.detach().double().cpu()


def scoring_inputs(
    teacher: nn.Module,
    data: ImageDataset,
    weight_decay: float,
    checkpoints: list[tuple[int, float, nn.Module]] = (),
    seed: int = 0,
) -> ScoringInputs:
    """Everything an estimator may use, computed once from the teacher (and its training checkpoints)."""
    train = split_outputs(teacher, data.train_images, data.train_labels, data)
    val = split_outputs(teacher, data.val_images, data.val_labels, data) if data.val_images.shape[0] else None
    ckpts = []
    for epoch, lr, model in checkpoints:
        weight, bias = head_of(model)
        ckpts.append(CheckpointOutputs(epoch, lr, split_outputs(model, data.train_images, data.train_labels, data),
                                       weight, bias))
    weight, bias = head_of(teacher)
    return ScoringInputs(train, weight, bias, weight_decay, val, tuple(ckpts), seed)
