"""Checks the built-in estimators share: consistent splits and well-formed parameters, one-line errors."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from kdbench.contracts import ScoringInputs, SplitOutputs, TeacherNetwork
from kdbench.errors import KdbenchError

VAL_MISSING = "needs a validation split: set the dataset's val_fraction"


def split_checked(split: SplitOutputs, what: str) -> SplitOutputs:
    """The split with consistent shapes (N×d features, N×C logits, N labels in range), else a one-line error."""
    h, z, y = split.features, split.logits, split.labels
    if h.dim() != 2 or z.dim() != 2 or y.dim() != 1 or not (h.shape[0] == z.shape[0] == y.shape[0]):
        raise KdbenchError(
            f"{what}: expected features N×d, logits N×C and labels N, got {tuple(h.shape)}, {tuple(z.shape)}, "
            f"{tuple(y.shape)}"
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= z.shape[1]):
        raise KdbenchError(f"{what}: labels must lie in 0..{z.shape[1] - 1}")
    return split


def network_checked(inputs: ScoringInputs, estimator: str, needs_val: bool) -> TeacherNetwork:
    """The teacher as a network (estimators with ``needs_network``), with N×C×H×W training images and labels that
    fit the train split and, for a ``val`` score, a validation split; else a one-line error."""
    network = inputs.network
    if network is None:
        raise KdbenchError(f"{estimator}: needs the teacher as a network (ScoringInputs.network), which the harness "
                           "gives to estimators that declare needs_network")
    n = inputs.train.num_samples
    images, labels = network.train_images, network.train_labels
    if images.dim() != 4 or images.shape[0] != n or tuple(labels.shape) != (n,):
        raise KdbenchError(
            f"{estimator}: expected {n} training images N×C×H×W and {n} labels, got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if needs_val and (network.val_images is None or network.val_labels is None or network.val_labels.numel() == 0):
        raise KdbenchError(f"{estimator} score 'val' {VAL_MISSING}")
    return network


def probabilities(split: SplitOutputs) -> Tensor:
    return torch.softmax(split.logits.to(torch.float64), dim=1)


def positive_int(name: str, value: Any, estimator: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KdbenchError(f"{estimator}: {name} must be a positive integer, got {value!r}")
    return value


def positive_float(name: str, value: Any, estimator: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise KdbenchError(f"{estimator}: {name} must be a positive number, got {value!r}")
    return float(value)


def choice(name: str, value: Any, choices: tuple[str, ...], estimator: str) -> str:
    if value not in choices:
        raise KdbenchError(f"{estimator}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)
