"""The contract of data-value estimators (plugins of kind "estimator") for Data Selection (docs/methods.md §6a).

An estimator scores every training sample once, from the trained teacher, before any student trains
(the paper's Algorithm 1). It sees the teacher only through :class:`ScoringInputs`: penultimate
features, logits and labels on un-augmented images, the classifier head, the teacher's weight decay,
optionally a validation split and checkpoints saved while the teacher trained (TracIn). Everything is
float64 so that the influence solvers are exact to rounding.

An estimator that differentiates through the whole network (Kronfluence, TRAK) declares ``needs_network``
and also gets :class:`TeacherNetwork`: the teacher module itself (and its checkpoints' modules), with the
un-augmented, normalised images of the training and validation splits in sample order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn


@dataclass(frozen=True)
class SplitOutputs:
    """The teacher's view of one split: h (N×d), z (N×C), y (N), all on one device, float64 / int64."""

    features: Tensor
    logits: Tensor
    labels: Tensor

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class CheckpointOutputs:
    """The teacher at one checkpoint saved during its training, for TracIn-style estimators."""

    epoch: int
    lr: float
    train: SplitOutputs
    head_weight: Tensor  # C×d
    head_bias: Tensor  # C


@dataclass(frozen=True)
class TeacherNetwork:
    """The teacher as a network, for estimators with ``needs_network``: a copy of the trained module (eval mode,
    float32, on the CPU), copies of the modules of the checkpoints saved while it trained (``needs_checkpoints``; epoch,
    learning rate, module), and each split's normalised, un-augmented images (float32, N×C×H×W, sample order:
    row i is sample i of ``ScoringInputs.train``) with their labels. An estimator may differentiate through
    the modules (their parameters require grad); they are copies, so nothing it does reaches the run."""

    model: nn.Module
    train_images: Tensor
    train_labels: Tensor
    val_images: Tensor | None = None
    val_labels: Tensor | None = None
    checkpoints: tuple[tuple[int, float, nn.Module], ...] = ()


@dataclass(frozen=True)
class ScoringInputs:
    train: SplitOutputs
    head_weight: Tensor  # C×d, the trained teacher's final linear layer
    head_bias: Tensor  # C
    weight_decay: float  # the teacher recipe's weight decay: default influence damping
    val: SplitOutputs | None = None
    checkpoints: tuple[CheckpointOutputs, ...] = ()
    seed: int = 0
    network: TeacherNetwork | None = None  # given to estimators with ``needs_network`` only


@dataclass(frozen=True)
class Scores:
    """Per-sample scores plus the resolved settings actually used (recorded with every run)."""

    values: Tensor  # N, float64
    info: dict[str, Any] = field(default_factory=dict)


class DataValueEstimator:
    """Base class: subclass, declare needs and direction, implement :meth:`score`."""

    # Does a higher score mean "send this sample to the teacher" (into D_t)?
    higher_to_teacher: ClassVar[bool] = True
    # Which end of the score a wrongly labelled sample is expected at, when the scores are read as a noise
    # detector (``kdbench score`` on a dataset with label noise, docs/methods.md §12): "high" or "low".
    suspect_when: ClassVar[str] = "high"
    needs_validation: bool = False
    needs_checkpoints: ClassVar[bool] = False
    # The teacher module and the split's images (``ScoringInputs.network``), for whole-network estimators
    needs_network: ClassVar[bool] = False

    def score(self, inputs: ScoringInputs) -> Scores:
        raise NotImplementedError
