"""TracIn self-influence over the teacher's training checkpoints (Pruthi et al. 2020; docs/methods.md §6a)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, SplitOutputs, hookimpl
from kdbench.errors import KdbenchError

from ._checks import probabilities, split_checked


def _grand_squared(split: SplitOutputs) -> Tensor:
    """‖∇_θ ℓ_i‖² of the head's gradient δ_i ⊗ h̃_i: ‖δ_i‖²·(‖h_i‖² + 1)."""
    probs = probabilities(split)
    delta = probs - torch.nn.functional.one_hot(split.labels.long(), probs.shape[1]).to(torch.float64)
    return delta.pow(2).sum(dim=1) * (split.features.to(torch.float64).pow(2).sum(dim=1) + 1.0)


class TracIn(DataValueEstimator):
    """TracIn self-influence (Pruthi et al. 2020) on the head: Σ_t η_t ‖δ_i^t‖²·‖h̃_i^t‖² over checkpoints.

    Each checkpoint contributes with its own features, logits and learning rate. With zero or one
    checkpoint this is GraNd² at a single set of weights (the final ones when there are none, with
    η = 1), not TracIn; a warning says so. Higher → teacher.
    """

    higher_to_teacher = True
    needs_checkpoints = True

    def score(self, inputs: ScoringInputs) -> Scores:
        checkpoints = inputs.checkpoints
        n = inputs.train.num_samples
        if len(checkpoints) <= 1:
            warnings.warn(
                f"tracin with {len(checkpoints)} checkpoint(s) degenerates to GraNd² (squared head-gradient "
                "norm) at a single set of weights; save teacher checkpoints during training for TracIn",
                stacklevel=2,
            )
        if not checkpoints:
            values = _grand_squared(split_checked(inputs.train, "tracin train split"))
            return Scores(values=values, info={"num_checkpoints": 0, "epochs": [], "lrs": []})
        values = torch.zeros(n, dtype=torch.float64, device=inputs.train.labels.device)
        for ckpt in checkpoints:
            split = split_checked(ckpt.train, f"tracin checkpoint (epoch {ckpt.epoch})")
            if split.num_samples != n:
                raise KdbenchError(
                    f"tracin: checkpoint of epoch {ckpt.epoch} has {split.num_samples} samples, the train split {n}"
                )
            values += float(ckpt.lr) * _grand_squared(split)
        info = {
            "num_checkpoints": len(checkpoints),
            "epochs": [int(c.epoch) for c in checkpoints],
            "lrs": [float(c.lr) for c in checkpoints],
        }
        return Scores(values=values, info=info)


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("tracin", TracIn, version="1")
