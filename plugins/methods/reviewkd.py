"""ReviewKD: distilling knowledge via knowledge review (Chen, Liu, Zhao, Jia, "Distilling Knowledge via Knowledge
Review", CVPR 2021, arXiv 2104.09044; reference code dvlab-research/ReviewKD).

Why: one-to-one feature hints (FitNet) make each student stage copy the teacher stage at its own depth. ReviewKD
lets a shallow teacher stage supervise a student stage *together with everything deeper*: the student's stages
are fused from the deepest to the shallowest by attention-based fusion (ABF) modules, so each fused map "reviews"
the deeper ones, and each is compared with the teacher's stage at the same level through a hierarchical context
loss (HCL) that also compares average-pooled pyramids of the two maps. The ABF modules are the method's own,
trained with the student. What is computed, the levels, the pair table of β and the defaults: docs/methods.md §4.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    MethodContext,
    PairInfo,
    StepInputs,
    ce_and_kd_terms,
    hookimpl,
    upcast,
)
from kdbench.errors import KdbenchError

DEFAULT_BETA = 1.0  # train.py's --kd-loss-weight default, for pairs the reference's scripts do not list
# (teacher, student) → β, as dvlab-research/ReviewKD's CIFAR-100/script/reviewKD.sh trains them.
PAIR_BETA: dict[tuple[str, str], float] = {
    ("wrn_40_2", "wrn_16_2"): 5.0,
    ("wrn_40_2", "wrn_40_1"): 5.0,
    ("wrn_40_2", "ShuffleV1"): 5.0,
    ("resnet32x4", "resnet8x4"): 5.0,
    ("resnet32x4", "ShuffleV1"): 5.0,
    ("resnet32x4", "ShuffleV2"): 8.0,
    ("resnet56", "resnet20"): 0.6,
    ("resnet110", "resnet32"): 1.0,
}
CIFAR_WARMUP = 20.0  # CIFAR-100/train.py --kd-warm-up
HCL_LEVELS = (4, 2, 1)  # the pyramid of the hierarchical context loss: l×l average pools, l < the map's size
MAX_MID_CHANNELS = 512  # mid_channel = min(512, the student's pooled width)


def is_imagenet_student(pair: PairInfo) -> bool:
    """The reference's ImageNet code (torchvision-style ResNets) differs: no warm-up, pre-activation student."""
    return pair.student.startswith("imagenet_")


class _BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that normalises a training batch of a single value per channel (one sample on a 1×1 map, the
    pooled level) with its running statistics instead of raising, as SRRL's connector does."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
            )
        return super().forward(x)


class ABF(nn.Module):
    """Attention-based fusion: a student map → 1×1 conv + BN (``mid`` channels); fused with the (deeper) residual
    by a per-pixel, two-way sigmoid attention; resized to the teacher map; → 3×3 conv + BN (teacher channels).

    ``forward`` returns ``(output, residual)``: the output is compared with the teacher's map, the residual (the
    fused ``mid``-channel map, at the teacher map's size) goes on to the next, shallower level. The deepest level
    has nothing to fuse (``fuse=False``).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool) -> None:
        super().__init__()
        reduce = nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False)
        expand = nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False)
        # the reference's layout and key names (conv1.0, conv1.1, conv2.0, conv2.1, att_conv.0) and init order
        self.conv1 = nn.Sequential(reduce, _BatchNorm2d(mid_channels))
        self.conv2 = nn.Sequential(expand, _BatchNorm2d(out_channels))
        self.att_conv = nn.Sequential(nn.Conv2d(2 * mid_channels, 2, kernel_size=1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(reduce.weight, a=1)
        nn.init.kaiming_uniform_(expand.weight, a=1)

    def forward(self, x: Tensor, residual: Tensor | None, out_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        x = self.conv1(x)
        if self.att_conv is not None:
            if residual is None:
                raise ValueError("a fusing ABF needs the residual of the deeper level")
            y = F.interpolate(residual, size=(x.shape[-2], x.shape[-1]), mode="nearest")
            z = self.att_conv(torch.cat([x, y], dim=1))
            x = x * z[:, 0:1] + y * z[:, 1:2]
        if (x.shape[-2], x.shape[-1]) != out_size:
            x = F.interpolate(x, size=out_size, mode="nearest")
        return self.conv2(x), x


def hcl_level(fs: Tensor, ft: Tensor) -> Tensor:
    """The hierarchical context loss of one level: ``(mse(fs, ft) + Σ_k 2^-k·mse(pool_lk(fs), pool_lk(ft))) /
    (1 + Σ_k 2^-k)``, with ``l_k`` the pyramid sizes 4, 2, 1 that are smaller than the map (k counts those)."""
    fs = upcast(fs)
    ft = upcast(ft).to(fs.dtype)
    size = min(fs.shape[-2], fs.shape[-1])
    loss = F.mse_loss(fs, ft)
    weight = total = 1.0
    for level in HCL_LEVELS:
        if level >= size:
            continue
        weight /= 2.0
        loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(fs, level), F.adaptive_avg_pool2d(ft, level))
        total += weight
    return loss / total


def hcl(student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor]) -> Tensor:
    """HCL summed over the levels (ReviewKD's ``hcl``), in at least fp32."""
    if len(student_maps) != len(teacher_maps) or not student_maps:
        raise ValueError(f"hcl needs as many student as teacher maps, got {len(student_maps)} and {len(teacher_maps)}")
    with torch.autocast(device_type=student_maps[0].device.type, enabled=False):
        losses = [hcl_level(fs, ft) for fs, ft in zip(student_maps, teacher_maps, strict=True)]
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total


def warmup_factor(epoch: int, warmup: float) -> float:
    """``min(1, (epoch − 1)/warmup)`` for the 1-indexed ``epoch``: the reference's ``min(1, epoch/warm_up)`` on
    its 0-indexed epochs, so the first epoch trains without the review loss; 1 when ``warmup <= 0``."""
    if warmup <= 0:
        return 1.0
    return min(1.0, (epoch - 1) / warmup)


def _as_map(feat: Tensor) -> Tensor:
    """A pooled vector [B, C] as a [B, C, 1, 1] map; maps pass through."""
    return feat.reshape(feat.shape[0], -1, 1, 1) if feat.dim() == 2 else feat


class ReviewKD(DistillationMethod):
    """ReviewKD (Chen et al., CVPR 2021): γ·CE + min(1, (epoch−1)/warmup)·β·Σ_levels HCL(ABF-review(fs), ft).

    The levels are the stage maps ``feats[1:-1]`` and the pooled vector ``feats[-1]`` (as a 1×1 map) of both
    networks; the teacher's stage maps are its pre-activation features. ``beta=None`` takes β from the reference's
    per-pair table ``PAIR_BETA``, else 1; ``warmup`` and ``student_preact`` default to the reference's CIFAR code
    (20 epochs, post-activation student) or, for ``imagenet_*`` students, its ImageNet code (none, pre-activation).
    ``alpha`` adds Hinton KD at ``T`` (the reference's ``--use-kl``, off).
    """

    needs_features = True
    teacher_preact = True  # the reference reads the teacher's stage maps before their ReLU (``preact=True``)

    def __init__(
        self,
        beta: float | None = None,
        gamma: float = 1.0,
        warmup: float | None = None,
        student_preact: bool | None = None,
        max_mid_channels: int = MAX_MID_CHANNELS,
        alpha: float = 0.0,
        T: float = 4.0,
    ) -> None:
        super().__init__()
        if int(max_mid_channels) < 1:
            raise KdbenchError(f"reviewkd: max_mid_channels must be positive, got {max_mid_channels}")
        # Constructed directly (not through a suite) with None: the CIFAR code's pair-independent defaults.
        self.beta = DEFAULT_BETA if beta is None else float(beta)
        self.gamma, self.alpha, self.T = float(gamma), float(alpha), float(T)
        self.warmup = CIFAR_WARMUP if warmup is None else float(warmup)
        self.student_preact = bool(student_preact)
        self.max_mid_channels = int(max_mid_channels)
        self.levels = 0  # stage maps paired per side (the pooled vectors come on top); set in setup
        self.out_sizes: list[tuple[int, int]] = []  # the teacher's map size per level, shallow to deep
        self.abfs = nn.ModuleList()  # deepest level first, as the reference orders them

    @classmethod
    def resolve_params(cls, params: Mapping[str, Any], pair: PairInfo) -> dict[str, Any]:
        """β from the (teacher, student) table; warm-up and the student's features from the CIFAR or ImageNet code."""
        resolved = dict(params)
        imagenet = is_imagenet_student(pair)
        if resolved.get("beta") is None:
            resolved["beta"] = PAIR_BETA.get((pair.teacher or "", pair.student), DEFAULT_BETA)
        if resolved.get("warmup") is None:
            resolved["warmup"] = 0.0 if imagenet else CIFAR_WARMUP
        if resolved.get("student_preact") is None:
            resolved["student_preact"] = imagenet
        return resolved

    # -- setup -----------------------------------------------------------------------------------------

    @staticmethod
    def _split(side: str, shapes: Sequence[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], int]:
        """A side's stage maps ``feats[1:-1]`` (C×H×W) and its pooled width ``feats[-1]``."""
        maps, pooled = [tuple(s) for s in shapes[1:-1]], tuple(shapes[-1]) if shapes else ()
        if not maps or any(len(s) != 3 for s in maps) or len(pooled) not in (1, 3) or pooled[1:] not in ((), (1, 1)):
            raise KdbenchError(
                f"reviewkd needs C×H×W stage maps and a pooled vector from the {side} (feats = [stem, stage1, ..., "
                f"pooled]), got {[tuple(s) for s in shapes]}"
            )
        return maps, int(pooled[0])

    def setup(self, ctx: MethodContext) -> None:
        s_maps, s_pooled = self._split("student", ctx.student_feature_shapes)
        t_maps, t_pooled = self._split("teacher", ctx.teacher_feature_shapes)
        # Stage maps pair in order from the first; the deeper extra stages of the longer network are left out.
        self.levels = min(len(s_maps), len(t_maps))
        s_channels = [s[0] for s in s_maps[: self.levels]] + [s_pooled]
        t_channels = [t[0] for t in t_maps[: self.levels]] + [t_pooled]
        self.out_sizes = [(t[1], t[2]) for t in t_maps[: self.levels]] + [(1, 1)]
        mid = min(self.max_mid_channels, s_pooled)
        # Built shallow to deep, then reversed (the reference's order, so its initialisation draws the same way).
        shallow_first = [
            ABF(c_s, mid, c_t, fuse=i < self.levels)
            for i, (c_s, c_t) in enumerate(zip(s_channels, t_channels, strict=True))
        ]
        self.abfs = nn.ModuleList(shallow_first[::-1])

    # -- pieces, public so that tests can check them one by one -------------------------------------------

    def levels_of(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """The maps ReviewKD compares, shallow to deep: the first ``levels`` stage maps, then the pooled 1×1 map."""
        return [*feats[1 : 1 + self.levels], _as_map(feats[-1])]

    def review(self, student_levels: Sequence[Tensor]) -> list[Tensor]:
        """The ABF outputs, shallow to deep: the deepest level alone, then each shallower one fused with the
        residual of the one below it (the review path)."""
        dtype = next(self.abfs.parameters()).dtype
        deep_first = [f.to(dtype) for f in reversed(student_levels)]  # under autocast the convs recast anyway
        sizes = self.out_sizes[::-1]
        outputs: list[Tensor] = []
        residual: Tensor | None = None
        for feat, abf, size in zip(deep_first, self.abfs, sizes, strict=True):
            out, residual = abf(feat, residual, size)
            outputs.insert(0, out)
        return outputs

    def review_loss(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        """The unweighted review term ``Σ_levels HCL(ABF output, teacher map)``."""
        if not self.abfs:
            raise RuntimeError("ReviewKD.setup() must run before the first step")
        return hcl(self.review(self.levels_of(student_feats)), self.levels_of(teacher_feats))

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.student_feats is not None and step.teacher_feats is not None, "reviewkd needs features"
        ramp = warmup_factor(step.epoch, self.warmup)
        review = self.review_loss(step.student_feats, step.teacher_feats)
        return LossTerms(
            sample=ce_and_kd_terms(step, self.gamma, self.alpha, self.T), batch={"reviewkd": ramp * self.beta * review}
        )

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, gamma={self.gamma}, warmup={self.warmup}, student_preact={self.student_preact}, "
            f"levels={self.levels}, alpha={self.alpha}, T={self.T}"
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., Any]) -> None:
    register("reviewkd", ReviewKD)
