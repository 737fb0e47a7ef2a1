"""Label noise on purpose (docs/methods.md §12): flip a given fraction of a split's labels, exactly and
reproducibly, so that Label Revision, Data Selection and the estimators can be studied when the ground
truth is wrong.

Three kinds: ``symmetric`` (to any other class, uniformly), ``pairflip`` (class c to c + 1 mod K, the
usual asymmetric benchmark noise) and ``superclass`` (to another class of the same superclass, CIFAR-100's
coarse labels: the confusions a human labeller makes). A flipped label never equals the true one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kdbench.contracts import ImageDataset
from kdbench.errors import KdbenchError

NOISE_KINDS = ("symmetric", "pairflip", "superclass")
SUSPECT_ENDS = ("high", "low")


def flip_labels(labels: Tensor, num_classes: int, rate: float, kind: str, seed: int,
                superclasses: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """``(noisy labels, flipped mask)``: exactly ``round(rate · N)`` labels flipped, which ones and to what
    depending only on ``seed``. A rate outside [0, 1), or a kind this data cannot do, is one line."""
    if not 0 <= rate < 1:
        raise KdbenchError(f"label_noise: rate must be in [0, 1), got {rate}")
    if kind not in NOISE_KINDS:
        raise KdbenchError(f"label_noise: unknown kind {kind!r}; expected one of {', '.join(NOISE_KINDS)}")
    if num_classes < 2:
        raise KdbenchError("label_noise: needs at least two classes")
    if kind == "superclass" and superclasses is None:
        raise KdbenchError("label_noise: kind 'superclass' needs a dataset that knows its superclasses "
                           "(cifar100); this one does not")
    cpu = labels.detach().to("cpu", torch.int64)
    n = int(cpu.shape[0])
    generator = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=generator)[: round(rate * n)]
    noisy = cpu.clone()
    original = cpu[chosen]
    if kind == "symmetric":  # an offset of 1..K-1 lands uniformly on every other class
        offsets = torch.randint(1, num_classes, (len(chosen),), generator=generator)
        noisy[chosen] = (original + offsets) % num_classes
    elif kind == "pairflip":
        noisy[chosen] = (original + 1) % num_classes
    else:
        assert superclasses is not None  # refused above
        noisy[chosen] = _within_superclass(original, superclasses, generator)
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[chosen] = True
    return noisy.to(labels.device), flipped


def _within_superclass(original: Tensor, superclasses: Sequence[int], generator: torch.Generator) -> Tensor:
    """Each label moved to a uniformly drawn other member of its superclass."""
    members: dict[int, list[int]] = {}
    for cls, sup in enumerate(superclasses):
        members.setdefault(int(sup), []).append(cls)
    out = torch.empty_like(original)
    for k, label in enumerate(original.tolist()):
        others = [c for c in members[int(superclasses[label])] if c != label]
        if not others:
            raise KdbenchError(f"label_noise: class {label} is alone in its superclass; it cannot be flipped within it")
        out[k] = others[int(torch.randint(len(others), (1,), generator=generator))]
    return out


def with_label_noise(data: ImageDataset, rate: float, kind: str, seed: int) -> ImageDataset:
    """``data`` with noisy training and validation labels (each split flipped at ``rate``, the validation
    split from ``seed + 1``) and their flipped masks; the test split is left exactly as it was."""
    train, train_flipped = flip_labels(data.train_labels, data.num_classes, rate, kind, seed, data.superclasses)
    val, val_flipped = flip_labels(data.val_labels, data.num_classes, rate, kind, seed + 1, data.superclasses)
    return dataclasses.replace(data, train_labels=train, val_labels=val, train_flipped=train_flipped.to(train.device),
                               val_flipped=val_flipped.to(val.device))


def auroc(suspicion: np.ndarray, flipped: np.ndarray) -> float:
    """Area under the ROC curve of ``suspicion`` for the ``flipped`` samples: the probability that a flipped
    sample is more suspicious than a clean one, ties counting half (Mann–Whitney U with mid-ranks)."""
    suspicion, flipped = np.asarray(suspicion, dtype=np.float64), np.asarray(flipped, dtype=bool)
    positives, negatives = int(flipped.sum()), int((~flipped).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    from scipy.stats import rankdata  # here, not at the top: scipy costs ~0.8 s on every `kdbench` start

    ranks = rankdata(suspicion)
    return float((ranks[flipped].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def precision_at_k(suspicion: np.ndarray, flipped: np.ndarray, k: int) -> float:
    """Share of flipped samples among the ``k`` most suspicious (ties broken by the lower index)."""
    if k <= 0:
        return float("nan")
    order = np.argsort(-np.asarray(suspicion, dtype=np.float64), kind="stable")
    return float(np.asarray(flipped, dtype=bool)[order[:k]].mean())


#: The share of the training set a reader inspects, most suspicious first, in :func:`found_by_inspecting`:
#: Kronfluence's figure (82% of the flipped CIFAR-10 labels found in the top 10% of self-influence).
INSPECTED_SHARE = 0.1


def found_by_inspecting(suspicion: np.ndarray, flipped: np.ndarray, share: float = INSPECTED_SHARE) -> float:
    """Share of all flipped samples among the ``round(share·N)`` most suspicious (at least one; ties broken by
    the lower index): what inspecting that much of the data, in the order of the scores, finds."""
    flipped = np.asarray(flipped, dtype=bool)
    total = int(flipped.sum())
    if total == 0:
        return float("nan")
    inspected = max(1, round(share * len(flipped)))
    order = np.argsort(-np.asarray(suspicion, dtype=np.float64), kind="stable")
    return float(flipped[order[:inspected]].sum() / total)


@dataclass(frozen=True)
class NoiseDetection:
    """How well one estimator's scores single out the flipped labels: AUROC, precision at k = the number of
    flipped samples (1 for a perfect detector), and the share of them found by inspecting the most suspicious
    10% of the data, reading the score as suspicious at its ``suspect_when`` end."""

    auroc: float
    precision_at_k: float
    k: int
    suspect_when: str
    found_at_10: float


def detect_flipped(scores: Tensor, flipped: Tensor, suspect_when: str) -> NoiseDetection:
    """The detection figures of per-sample ``scores`` against the ``flipped`` mask."""
    if suspect_when not in SUSPECT_ENDS:
        raise KdbenchError(f"an estimator's suspect_when must be 'high' or 'low', got {suspect_when!r}")
    suspicion = scores.detach().double().cpu().numpy() * (1.0 if suspect_when == "high" else -1.0)
    mask = flipped.detach().cpu().numpy().astype(bool)
    k = int(mask.sum())
    return NoiseDetection(auroc(suspicion, mask), precision_at_k(suspicion, mask, k), k, suspect_when,
                          found_by_inspecting(suspicion, mask))
