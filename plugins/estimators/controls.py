"""Cheap controls from the teacher's outputs alone: EL2N, margin, loss, teacher-correct (docs/methods.md §6a)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, hookimpl

from ._checks import probabilities, split_checked


class EL2N(DataValueEstimator):
    """EL2N (Paul et al. 2021) of the trained teacher: ‖p − e_y‖₂. Higher (harder) → teacher."""

    higher_to_teacher = True

    def score(self, inputs: ScoringInputs) -> Scores:
        split = split_checked(inputs.train, "el2n train split")
        probs = probabilities(split)
        delta = probs - torch.nn.functional.one_hot(split.labels.long(), probs.shape[1]).to(torch.float64)
        return Scores(values=torch.linalg.vector_norm(delta, dim=1), info={})


class Margin(DataValueEstimator):
    """Probability margin p_y − max_{c≠y} p_c. A low margin is a hard sample, so *lower* → teacher."""

    higher_to_teacher = False
    suspect_when = "low"  # a wrong label has a small, even negative, margin

    def score(self, inputs: ScoringInputs) -> Scores:
        split = split_checked(inputs.train, "margin train split")
        probs = probabilities(split)
        y = split.labels.long()[:, None]
        own = probs.gather(1, y)[:, 0]
        others = probs.scatter(1, y, -math.inf).amax(dim=1) if probs.shape[1] > 1 else torch.zeros_like(own)
        return Scores(values=own - others, info={})


class Loss(DataValueEstimator):
    """The teacher's cross-entropy −log p_y (from log-softmax, stable). Higher (harder) → teacher."""

    higher_to_teacher = True

    def score(self, inputs: ScoringInputs) -> Scores:
        split = split_checked(inputs.train, "loss train split")
        logp = torch.log_softmax(split.logits.to(torch.float64), dim=1)
        return Scores(values=-logp.gather(1, split.labels.long()[:, None])[:, 0], info={})


class TeacherCorrect(DataValueEstimator):
    """1.0 where the teacher's argmax equals the label, else 0.0.

    Higher → teacher: the samples the teacher gets right are the ones whose soft labels carry correct
    dark knowledge; the ones it gets wrong are left to ground truth (D_s). Ties in the sort are the
    selector's business.
    """

    higher_to_teacher = True
    suspect_when = "low"  # a teacher that disagrees with the label points at the label

    def score(self, inputs: ScoringInputs) -> Scores:
        split = split_checked(inputs.train, "teacher-correct train split")
        correct = split.logits.argmax(dim=1) == split.labels.long()
        return Scores(values=correct.to(torch.float64), info={})


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("el2n", EL2N, version="1")
    register("margin", Margin, version="1")
    register("loss", Loss, version="1")
    register("teacher-correct", TeacherCorrect, version="1")
