"""Uniform random scores: the random-selection baseline of Table II (docs/methods.md §6a)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, hookimpl
from kdbench.errors import KdbenchError


class RandomScores(DataValueEstimator):
    """Uniform scores in [0, 1) from a seeded generator: the random-selection baseline (Table II)."""

    higher_to_teacher = True

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise KdbenchError(f"random: seed must be an integer or null, got {seed!r}")
        self.seed = seed

    def score(self, inputs: ScoringInputs) -> Scores:
        seed = int(inputs.seed) if self.seed is None else self.seed
        generator = torch.Generator().manual_seed(seed)
        values = torch.rand(inputs.train.num_samples, generator=generator, dtype=torch.float64)
        return Scores(values=values.to(inputs.train.labels.device), info={"seed": seed})


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("random", RandomScores, version="1")
