"""VID: maximise a variational lower bound on the mutual information between student and teacher maps.

Ahn et al., "Variational Information Distillation for Knowledge Transfer", CVPR 2019. The teacher's
feature map at each stage is modelled as a Gaussian whose mean is predicted from the student's map by a
small network and whose per-channel variance is learned; minimising the negative log-likelihood of the
teacher's features maximises a lower bound on their mutual information with the student's. The learned
variance lets the student ignore channels it cannot predict instead of being forced to match them.
The pairing of stages, the loss and defaults: docs/methods.md §4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    MethodContext,
    StepInputs,
    ce_and_kd_terms,
    hookimpl,
    upcast,
)
from kdbench.errors import KdbenchError


def vid_mean_regressor(student_channels: int, teacher_channels: int) -> nn.Sequential:
    """μ(·): 1×1(s→t)-ReLU-1×1(t→t)-ReLU-1×1(t→t), no biases; the middle width is the teacher's."""
    return nn.Sequential(
        nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(teacher_channels, teacher_channels, kernel_size=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(teacher_channels, teacher_channels, kernel_size=1, bias=False),
    )


def inverse_softplus(y: float) -> float:
    """``x`` with ``softplus(x) = log(1 + exp(x)) = y``."""
    return math.log(math.expm1(y))


def match_spatial(f_s: Tensor, f_t: Tensor) -> tuple[Tensor, Tensor]:
    """Adaptive-average-pool whichever map is larger down to the smaller one's size (per dimension)."""
    size = (min(f_s.shape[-2], f_t.shape[-2]), min(f_s.shape[-1], f_t.shape[-1]))
    if tuple(f_s.shape[-2:]) != size:
        f_s = F.adaptive_avg_pool2d(f_s, size)
    if tuple(f_t.shape[-2:]) != size:
        f_t = F.adaptive_avg_pool2d(f_t, size)
    return f_s, f_t


class VID(DistillationMethod):
    """Variational Information Distillation (Ahn et al., CVPR 2019): γ·CE + β·Σ_pairs Gaussian NLL.

    For every stage pair of ``feats[1:-1]`` (paired from the first stage on; a deeper network's extra
    stages are left out, as in RepDistiller), the larger map is average-pooled to the smaller one's
    size, the mean μ(fs) comes from a bias-free 1×1 conv regressor and the per-channel variance is
    ``softplus(ℓ) + eps``, with ℓ initialised so that the variance starts at ``init_variance``. Per pair
    the loss is ``mean over (B, C, H, W) of 0.5·((μ(fs) − ft)²/σ² + log σ²)``; pairs are summed.
    ``alpha`` optionally adds Hinton KD at temperature ``T`` (off by default, docs/methods.md §4).
    """

    needs_features = True
    owns_logit_loss = False

    def __init__(
        self,
        beta: float = 1.0,
        gamma: float = 1.0,
        init_variance: float = 5.0,
        eps: float = 1e-5,
        alpha: float = 0.0,
        T: float = 4.0,
    ) -> None:
        super().__init__()
        if init_variance <= eps:
            raise KdbenchError(f"vid init_variance must exceed eps={eps}, got {init_variance}")
        self.beta, self.gamma, self.alpha, self.T = float(beta), float(gamma), float(alpha), float(T)
        self.init_variance, self.eps = float(init_variance), float(eps)
        self.regressors = nn.ModuleList()
        self.log_scales = nn.ParameterList()

    def setup(self, ctx: MethodContext) -> None:
        s_stages = _stage_shapes(ctx.student_feature_shapes, "student")
        t_stages = _stage_shapes(ctx.teacher_feature_shapes, "teacher")
        n_pairs = min(len(s_stages), len(t_stages))
        if n_pairs == 0:
            raise KdbenchError("vid needs at least one stage feature map (feats[1:-1]) on both networks")
        init = inverse_softplus(self.init_variance - self.eps)
        self.regressors = nn.ModuleList(
            vid_mean_regressor(s[0], t[0]) for s, t in zip(s_stages[:n_pairs], t_stages[:n_pairs], strict=True)
        )
        self.log_scales = nn.ParameterList(
            nn.Parameter(torch.full((t[0],), init)) for t in t_stages[:n_pairs]
        )

    def variances(self) -> list[Tensor]:
        """Per-pair, per-channel predicted variances ``softplus(ℓ) + eps``."""
        return [F.softplus(upcast(log_scale)) + self.eps for log_scale in self.log_scales]

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if len(self.regressors) == 0:
            raise RuntimeError("VID.setup() must run before loss_terms()")
        assert step.student_feats is not None and step.teacher_feats is not None
        s_stages, t_stages = step.student_feats[1:-1], step.teacher_feats[1:-1]
        total = None
        for regressor, variance, f_s, f_t in zip(
            self.regressors, self.variances(), s_stages, t_stages, strict=False
        ):
            f_s, f_t = match_spatial(f_s, f_t)
            mean = upcast(regressor(f_s))
            var = variance.view(1, -1, 1, 1)
            nll = 0.5 * ((mean - upcast(f_t)).pow(2) / var + torch.log(var))
            total = nll.mean() if total is None else total + nll.mean()
        assert total is not None
        sample = ce_and_kd_terms(step, self.gamma, self.alpha, self.T)
        return LossTerms(sample=sample, batch={"vid": self.beta * total})


def _stage_shapes(shapes: Sequence[tuple[int, ...]], side: str) -> list[tuple[int, ...]]:
    stages = list(shapes[1:-1])
    for shape in stages:
        if len(shape) != 3:
            raise KdbenchError(f"vid needs C×H×W stage feature maps; the {side} has one of shape {tuple(shape)}")
    return stages


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("vid", VID)
