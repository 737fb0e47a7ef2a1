"""SRRL: match the penultimate features directly and through the teacher's frozen classifier.

Yang et al., "Knowledge Distillation via Softmax Regression Representation Learning", ICLR 2021. The
student's pooled feature is mapped to the teacher's width by a connector and (1) regressed onto the
teacher's pooled feature and (2) passed through the teacher's own, frozen classifier, whose output is
regressed onto the teacher's logits. The second term judges the student's representation by what the
teacher's classifier makes of it, so only directions that matter for the classification are enforced.
The loss and defaults: docs/methods.md §4.
"""

from __future__ import annotations

from collections.abc import Callable

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


class Connector(nn.Module):
    """1×1 conv (no bias) + BN + ReLU on the pooled vector viewed as ``B×C×1×1``.

    A training batch of a single sample has no batch statistics on a 1×1 map (``BatchNorm2d`` would
    raise), so such a batch is normalised with the running statistics instead.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, pooled: Tensor) -> Tensor:
        x = self.conv(pooled.reshape(pooled.shape[0], -1, 1, 1))
        if self.bn.training and x.shape[0] == 1:
            x = F.batch_norm(
                x, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias,
                training=False, eps=self.bn.eps,
            )
        else:
            x = self.bn(x)
        projected: Tensor = self.relu(x).flatten(1)
        return projected


class SRRL(DistillationMethod):
    """Softmax Regression Representation Learning (Yang et al., ICLR 2021): γ·CE + β·(L_feat + L_sr).

    ``L_feat = mean((h − ft)²)`` and ``L_sr = mean((W_t·h + b_t − zt)²)`` with ``h`` the connector's
    output, ``ft`` the teacher's pooled feature and ``W_t, b_t`` the teacher's classifier. Gradients flow
    through ``W_t`` into the student, but the classifier is neither a parameter of this method nor ever
    changed: it is held outside the module tree and used detached. ``alpha`` optionally adds Hinton KD
    at temperature ``T``; docs/methods.md §4 sets α=0 as a [choice].
    """

    needs_features = True
    owns_logit_loss = False

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, alpha: float = 0.0, T: float = 4.0) -> None:
        super().__init__()
        self.beta, self.gamma, self.alpha, self.T = float(beta), float(gamma), float(alpha), float(T)
        self.connector: Connector | None = None
        # A plain tuple, so nn.Module registers neither the teacher's head nor its parameters.
        self._teacher_head: tuple[nn.Linear, ...] = ()

    def setup(self, ctx: MethodContext) -> None:
        head = ctx.teacher_classifier
        if head is None:
            raise KdbenchError("srrl needs the teacher's classifier; run it with a teacher")
        if not ctx.student_feature_shapes or not ctx.teacher_feature_shapes:
            raise KdbenchError("srrl needs the student's and teacher's feature shapes")
        s_width = _width(ctx.student_feature_shapes[-1])
        t_width = _width(ctx.teacher_feature_shapes[-1])
        if head.in_features != t_width:
            raise KdbenchError(
                f"srrl: the teacher's classifier takes {head.in_features} inputs but its pooled feature has "
                f"{t_width}"
            )
        self.connector = Connector(s_width, t_width)
        self._teacher_head = (head,)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if self.connector is None or not self._teacher_head:
            raise RuntimeError("SRRL.setup() must run before loss_terms()")
        assert step.student_feats is not None and step.teacher_feats is not None
        assert step.teacher_logits is not None
        h = upcast(self.connector(step.student_feats[-1]))
        f_t = upcast(step.teacher_feats[-1]).flatten(1)
        z_t = upcast(step.teacher_logits)
        head = self._teacher_head[0]
        # Autocast off: the teacher-classifier product is part of the loss and must stay in ≥ fp32.
        with torch.autocast(device_type=h.device.type, enabled=False):
            weight = head.weight.detach().to(h.dtype)
            bias = head.bias.detach().to(h.dtype) if head.bias is not None else None
            z_s = F.linear(h, weight, bias)
            loss = (h - f_t).pow(2).mean() + (z_s - z_t).pow(2).mean()
        sample = ce_and_kd_terms(step, self.gamma, self.alpha, self.T)
        return LossTerms(sample=sample, batch={"srrl": self.beta * loss})


def _width(shape: tuple[int, ...]) -> int:
    width = 1
    for v in shape:
        width *= int(v)
    return width


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("srrl", SRRL)
