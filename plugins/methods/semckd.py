"""SemCKD: cross-layer distillation with semantic calibration (Chen, Mei, Zhang, Wang, Wang, Feng, Chen,
"Cross-Layer Distillation with Semantic Calibration", AAAI 2021, doi:10.1609/aaai.v35i8.16865, arXiv 2012.03236).

Why: hand-assigned teacher/student layer pairs (FitNet, VID, ...) can pair layers whose semantics differ,
which hurts the student. SemCKD lets every student layer distil from *every* teacher layer and learns, per
training instance, how much each teacher layer counts, from how alike the two layers arrange the batch (their
Gram matrices). The terms, the spatial alignment, the full-batch requirement and the defaults: docs/methods.md §4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    MethodContext,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    kl_per_sample,
    upcast,
)
from kdbench.errors import KdbenchError

ALIGN_MODES = ("pool_larger", "to_teacher")


class GramEmbed(nn.Module):
    """Per-instance embedding of a layer's Gram matrix rows: Linear(B→2·(B/4))-ReLU-Linear(→B/4), L2-normalised.

    For B divisible by 4 the hidden width 2·(B//4) equals B/2; the output width is at least 1.
    """

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        out_dim = max(1, batch_size // 4)
        self.linear1 = nn.Linear(batch_size, 2 * out_dim)
        self.linear2 = nn.Linear(2 * out_dim, out_dim)

    def forward(self, gram: Tensor) -> Tensor:
        hidden = F.relu(self.linear1(gram))
        return F.normalize(self.linear2(hidden), p=2.0, dim=1)


class ValueEmbed(nn.Sequential):
    """Student map → teacher width: 1×1(s→2t)-BN-ReLU-3×3(2t→2t)-BN-ReLU-1×1(2t→t), convolutions without bias."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        mid = 2 * out_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=1, bias=False),
        )


def gram_matrix(feat: Tensor) -> Tensor:
    """``F Fᵀ`` of the flattened per-sample features: [B, ...] → [B, B]."""
    flat = feat.reshape(feat.shape[0], -1)
    return flat @ flat.t()


class SemCKD(DistillationMethod):
    """SemCKD (Chen et al., AAAI 2021): per-instance attention over all teacher layers for every student layer.

    Total loss ``γ·CE + α·T²·KL(σ_T(zt) ‖ σ_T(zs)) + β·L_SemCKD``; docs/methods.md §4 has the terms.
    """

    needs_features = True
    full_batches_only = True

    def __init__(
        self,
        beta: float = 400.0,
        gamma: float = 1.0,
        alpha: float = 1.0,
        T: float = 4.0,
        align: str = "pool_larger",
    ) -> None:
        super().__init__()
        if align not in ALIGN_MODES:
            raise KdbenchError(f"semckd: align must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
        self.beta, self.gamma, self.alpha, self.T = float(beta), float(gamma), float(alpha), float(T)
        self.align = align
        self.batch_size = 0
        self.student_shapes: list[tuple[int, ...]] = []
        self.teacher_shapes: list[tuple[int, ...]] = []
        self.query = nn.ModuleList()
        self.key = nn.ModuleList()
        self.value = nn.ModuleList()

    def setup(self, ctx: MethodContext) -> None:
        s_shapes = [tuple(s) for s in ctx.student_feature_shapes[1:-1]]
        t_shapes = [tuple(s) for s in ctx.teacher_feature_shapes[1:-1]]
        if not s_shapes or not t_shapes:
            raise KdbenchError("semckd needs at least one stage feature map on each side (feats[1:-1])")
        for shape in s_shapes + t_shapes:
            if len(shape) != 3:
                raise KdbenchError(f"semckd needs C×H×W stage maps, got per-sample shape {shape}")
        if ctx.batch_size < 1:
            raise KdbenchError(f"semckd needs a positive batch size, got {ctx.batch_size}")
        self.batch_size = int(ctx.batch_size)
        self.student_shapes, self.teacher_shapes = s_shapes, t_shapes
        self.query = nn.ModuleList(GramEmbed(self.batch_size) for _ in s_shapes)
        self.key = nn.ModuleList(GramEmbed(self.batch_size) for _ in t_shapes)
        self.value = nn.ModuleList(
            nn.ModuleList(ValueEmbed(s[0], t[0]) for t in t_shapes) for s in s_shapes
        )

    # -- pieces, public so that tests can check them one by one -------------------------------------------

    def _param_dtype(self) -> torch.dtype:
        param = next(self.parameters(), None)
        return param.dtype if param is not None else torch.float32

    def attention(self, student_maps: list[Tensor], teacher_maps: list[Tensor]) -> Tensor:
        """Per-instance weights α [B, n_s, n_t]: softmax over teacher layers of query·key, in ≥ fp32."""
        dtype = self._param_dtype()
        device_type = student_maps[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            queries = torch.stack(
                [embed(gram_matrix(upcast(f).to(dtype))) for embed, f in zip(self.query, student_maps, strict=True)],
                dim=1,
            )  # [B, n_s, d]
            keys = torch.stack(
                [embed(gram_matrix(upcast(f).to(dtype))) for embed, f in zip(self.key, teacher_maps, strict=True)],
                dim=1,
            )  # [B, n_t, d]
            energy = torch.bmm(queries, keys.transpose(1, 2))  # [B, n_s, n_t]
            return F.softmax(energy, dim=-1)

    def aligned_pair(self, i: int, j: int, fs: Tensor, ft: Tensor) -> tuple[Tensor, Tensor]:
        """The value embedding of student map ``i`` for teacher layer ``j`` and its (possibly pooled) target."""
        s_hw, t_hw = (fs.shape[-2], fs.shape[-1]), (ft.shape[-2], ft.shape[-1])
        target = ft
        if self.align == "to_teacher":
            if s_hw != t_hw:
                fs = F.adaptive_avg_pool2d(fs, t_hw)
        elif s_hw[0] > t_hw[0] or s_hw[1] > t_hw[1]:  # pool_larger: shrink whichever map is larger
            fs = F.adaptive_avg_pool2d(fs, (min(s_hw[0], t_hw[0]), min(s_hw[1], t_hw[1])))
            pooled_hw = (fs.shape[-2], fs.shape[-1])
            if pooled_hw != t_hw:
                target = F.adaptive_avg_pool2d(ft, pooled_hw)
        elif s_hw != t_hw:
            target = F.adaptive_avg_pool2d(ft, s_hw)
        # Under autocast the convolutions recast their input themselves; otherwise match the parameters.
        row = cast(nn.ModuleList, self.value[i])  # ModuleList items are typed Module; setup puts a ModuleList here
        value = row[j](fs.to(self._param_dtype()))
        return value, target

    def pair_losses(self, student_maps: list[Tensor], teacher_maps: list[Tensor]) -> Tensor:
        """``mean_{C,H,W}((v_ij(fs_i)_b − ft_j,b)²)`` for every sample and pair: [B, n_s, n_t], in ≥ fp32."""
        rows = []
        for i, fs in enumerate(student_maps):
            cols = []
            for j, ft in enumerate(teacher_maps):
                value, target = self.aligned_pair(i, j, fs, ft)
                diff = upcast(value) - upcast(target).to(upcast(value).dtype)
                cols.append(diff.pow(2).reshape(diff.shape[0], -1).mean(dim=1))
            rows.append(torch.stack(cols, dim=1))
        return torch.stack(rows, dim=1)

    def feature_loss(self, student_maps: list[Tensor], teacher_maps: list[Tensor]) -> Tensor:
        """Unweighted SemCKD term ``Σ_{b,i,j} α_bij · mse_bij / (B · n_s)``."""
        batch = student_maps[0].shape[0]
        if batch != self.batch_size:
            raise KdbenchError(
                f"semckd needs full batches of {self.batch_size} (its attention MLPs take a batch-sized Gram "
                f"row), got a batch of {batch}; drop the last partial batch"
            )
        if len(student_maps) != len(self.query) or len(teacher_maps) != len(self.key):
            raise KdbenchError(
                f"semckd was set up for {len(self.query)} student and {len(self.key)} teacher stage maps, "
                f"got {len(student_maps)} and {len(teacher_maps)}"
            )
        weights = self.attention(student_maps, teacher_maps)
        losses = self.pair_losses(student_maps, teacher_maps)
        return (weights * losses).sum() / (batch * len(student_maps))

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.teacher_logits is not None, "semckd needs the teacher's logits"
        assert step.student_feats is not None and step.teacher_feats is not None, "semckd needs features"
        kl = kl_per_sample(step.teacher_logits, step.student_logits, self.T)
        feature = self.feature_loss(list(step.student_feats[1:-1]), list(step.teacher_feats[1:-1]))
        return LossTerms(
            sample={
                "ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets),
                "kd": self.alpha * self.T**2 * kl,
            },
            batch={"semckd": self.beta * feature},
        )

    def extra_repr(self) -> str:
        details: dict[str, Any] = {"beta": self.beta, "gamma": self.gamma, "alpha": self.alpha, "T": self.T,
                                   "align": self.align, "batch_size": self.batch_size}
        return ", ".join(f"{k}={v}" for k, v in details.items())


@hookimpl
def kdbench_register_methods(register: Callable[..., Any]) -> None:
    register("semckd", SemCKD)
