"""Data Selection (the paper's §III-C, Algorithm 1): score every training sample once, split D_t / D_s.

Scores come from an estimator plugin applied to the trained teacher's view of the un-augmented
training set (:class:`kdbench.estimators.ScoringInputs`). They are cached under
``$KDBENCH_HOME/scores/<key>.pt`` by (teacher, dataset, estimator and its parameters), so Table II's
nine cells score the training set once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kdbench.data import ImageDataset, iterate_batches
from kdbench.errors import KdbenchError
from kdbench.estimators import CheckpointOutputs, DataValueEstimator, ScoringInputs, SplitOutputs
from kdbench.models import classifier_of
from kdbench.spec import content_key
from kdbench.store import atomic_torch_save


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


def select(scores: Tensor | None, fraction: float, order: str, seed: int, num_samples: int) -> Tensor:
    """The D_t mask: ``round(fraction·N)`` samples with the highest / lowest scores, or a random subset.

    Ties are broken by sample index (stable sort), so the split is a pure function of its inputs.
    """
    count = int(round(fraction * num_samples))
    if order == "random":
        chosen = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))[:count]
    else:
        assert scores is not None
        ranked = torch.sort(scores.double().cpu(), descending=(order == "highest"), stable=True).indices
        chosen = ranked[:count]
    mask = torch.zeros(num_samples, dtype=torch.bool)
    mask[chosen] = True
    return mask


@dataclass(frozen=True)
class StoredScores:
    values: Tensor
    info: dict[str, Any]
    higher_to_teacher: bool
    labels: Tensor
    teacher_correct: Tensor
    seconds: float
    key: str


class ScoreCache:
    """Per-sample scores by content key under ``<home>/scores``."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "scores"

    def get_or_compute(
        self,
        key_parts: dict[str, Any],
        estimator: DataValueEstimator,
        make_inputs: Any,
    ) -> StoredScores:
        key = content_key(key_parts)
        path = self.root / f"{key}.pt"
        if path.is_file():
            return StoredScores(**torch.load(path, weights_only=False), key=key)
        inputs: ScoringInputs = make_inputs()
        start = time.perf_counter()
        scores = estimator.score(inputs)
        seconds = time.perf_counter() - start
        values = scores.values.double().cpu()
        if values.shape != (inputs.train.num_samples,) or not torch.isfinite(values).all():
            raise KdbenchError(f"estimator {key_parts['estimator']['name']!r} returned invalid scores "
                               f"(shape {tuple(values.shape)}, finite: {bool(torch.isfinite(values).all())})")
        stored = {
            "values": values,
            "info": scores.info,
            "higher_to_teacher": type(estimator).higher_to_teacher,
            "labels": inputs.train.labels,
            "teacher_correct": inputs.train.logits.argmax(1) == inputs.train.labels,
            "seconds": seconds,
        }
        atomic_torch_save(stored, path)
        return StoredScores(**stored, key=key)
