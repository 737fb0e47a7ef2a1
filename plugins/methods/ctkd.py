"""Curriculum Temperature KD (CTKD; Li et al., "Curriculum Temperature for Knowledge Distillation", AAAI 2023).

Why: instead of a fixed KD temperature, CTKD learns one adversarially. A trainable temperature *ascends* the
KD loss (it looks for the temperature hardest for the student) while the student descends it, through a
gradient-reversal layer (Ganin & Lempitsky 2015) whose strength grows from 0 (an easy task) to full reversal
over the first epochs: a curriculum. This is the paper's "global" variant, one temperature for all samples.
Formulas, defaults and the epoch convention: docs/methods.md §3. ``logit_std`` Z-scores both logit vectors
first (logit standardization, Sun et al., CVPR 2024; docs/methods.md, LS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    MethodContext,
    PairInfo,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    kl_from_target,
    standardize_logits,
    upcast,
)

from ._logit_std import LS_KD_WEIGHT, unset, with_ls_defaults


class GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``lambda_`` in the backward pass.

    With ``lambda_ <= 0`` the parameter behind it receives ``lambda_ · ∂L/∂x``: an optimizer that
    descends that gradient ascends ``L`` (scaled by ``|lambda_|``).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambda_: float) -> Tensor:
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output * ctx.lambda_, None


def gradient_reversal(x: Tensor, lambda_: float) -> Tensor:
    reversed_: Tensor = GradientReversal.apply(x, lambda_)
    return reversed_


def cosine_reversal_coefficient(epoch: int, ramp_epochs: int) -> float:
    """λ_e = (cos(π·min(e, R)/R) − 1)/2: 0 at e = 0, −1/2 at e = R/2, −1 from e = R on (R = ramp_epochs).

    ``ramp_epochs <= 0`` means full reversal from the start.
    """
    if ramp_epochs <= 0:
        return -1.0
    e = min(max(epoch, 0), ramp_epochs)
    return (math.cos(math.pi * e / ramp_epochs) - 1.0) / 2.0


class GlobalTemperature(nn.Module):
    """The learnable scalar θ behind CTKD's global temperature (a submodule, so the engine optimizes it)."""

    def __init__(self, init_theta: float) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(init_theta)))

    def forward(self, lambda_: float, tau_min: float, tau_range: float) -> Tensor:
        return tau_min + tau_range * torch.sigmoid(gradient_reversal(self.theta, lambda_))


class CTKD(DistillationMethod):
    """Curriculum Temperature KD, global temperature: γ·CE + α·τ²·KL(σ_τ(zt) ‖ σ_τ(zs)).

    τ = tau_min + tau_range·sigmoid(GRL_λ(θ)), θ learnable (init ``init_theta``) and trained with the
    student; λ_e = (cos(π·min(e, ramp_epochs)/ramp_epochs) − 1)/2 is set at the start of every epoch.
    ``logit_std``: both logit vectors are Z-scored per sample before the division by τ; the CE keeps the
    student's raw logits. Off by default, and then left out of the run key.
    """

    owns_logit_loss: ClassVar[bool] = True

    def __init__(
        self,
        gamma: float = 0.1,
        alpha: float | None = None,
        init_theta: float = 1.0,
        tau_min: float = 1.0,
        tau_range: float = 20.0,
        ramp_epochs: int = 10,
        logit_std: bool = False,
    ) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.alpha = unset(alpha, 0.9, LS_KD_WEIGHT, bool(logit_std))
        self.init_theta = float(init_theta)
        self.tau_min, self.tau_range = float(tau_min), float(tau_range)
        self.ramp_epochs = int(ramp_epochs)
        self.logit_std = bool(logit_std)
        # Before the first epoch starts λ is that of "epoch 0": no gradient reaches θ.
        self.reversal = cosine_reversal_coefficient(0, self.ramp_epochs)
        self.temperature: GlobalTemperature | None = None

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any], pair: PairInfo) -> dict[str, Any]:
        """α filled in: 0.9, or with ``logit_std`` LS's KD weight 9."""
        return with_ls_defaults(params, {"alpha": (0.9, LS_KD_WEIGHT)})

    def setup(self, ctx: MethodContext) -> None:
        self.temperature = GlobalTemperature(self.init_theta)

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        self.reversal = cosine_reversal_coefficient(epoch, self.ramp_epochs)

    def current_temperature(self) -> Tensor:
        """τ as used by the next step (with the reversal layer in the graph)."""
        if self.temperature is None:
            raise RuntimeError("ctkd: call setup() before computing losses (it creates the learnable temperature)")
        tau: Tensor = self.temperature(self.reversal, self.tau_min, self.tau_range)
        return tau

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if step.teacher_logits is None:
            raise ValueError("ctkd needs teacher logits")
        zs, zt = upcast(step.student_logits), upcast(step.teacher_logits)
        if self.logit_std:
            zs, zt = standardize_logits(zs), standardize_logits(zt)
        dtype = torch.promote_types(zs.dtype, zt.dtype)
        tau = self.current_temperature().to(torch.promote_types(dtype, torch.float32))
        log_p_s = F.log_softmax(zs / tau, dim=1)
        log_p_t = F.log_softmax(zt / tau, dim=1)
        if step.revise_teacher is None:
            kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
        else:  # Label Revision: the KL target σ_τ(zt) revised with the label, at the current τ (§7)
            kl = kl_from_target(step.teacher_target(log_p_t.exp()), log_p_s)
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets),
                "kd": self.alpha * tau**2 * kl,
            }
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("ctkd", CTKD)
