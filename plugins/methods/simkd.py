"""SimKD: knowledge distillation with the reused teacher classifier (Chen, Mei, Zhang, Wang, Feng, Chen, CVPR 2022,
arXiv 2203.14001).

Why: a student whose last feature map, after a small projector, equals the teacher's is as accurate as the teacher
once it is read by the teacher's own classifier. So SimKD trains only the feature alignment (one MSE, no
cross-entropy, no KD) and keeps the teacher's classifier, frozen, as the student's head: the student is evaluated
through the projector and that classifier, not through its own classifier (``provides_head``). What is computed and
the defaults: docs/methods.md §4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import DistillationMethod, LossTerms, MethodContext, StepInputs, hookimpl, upcast
from kdbench.errors import KdbenchError


def simkd_projector(in_channels: int, out_channels: int, factor: int) -> nn.Sequential:
    """The bottleneck that maps the student's last map to the teacher's width: 1×1 conv to ``out // factor``
    channels, 3×3 conv (padding 1), 1×1 conv to ``out``; every conv without bias and followed by BN and ReLU."""
    mid = out_channels // factor
    return nn.Sequential(
        nn.Conv2d(in_channels, mid, kernel_size=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class SimKD(DistillationMethod):
    """SimKD (Chen et al., CVPR 2022): β·mean((P(fs) − ft)²) on the last feature maps, and the student judged as
    ``W_t·avgpool(P(fs)) + b_t`` with ``(W_t, b_t)`` the teacher's classifier, frozen and reused.

    ``fs`` and ``ft`` are ``feats[-2]``, the last stage maps; the larger one (by height) is adaptive-average-pooled
    to the smaller one's size first. ``P`` is :func:`simkd_projector` with bottleneck ``factor``. There is no CE
    and no KD term. The teacher's classifier is held outside the module tree (neither a parameter nor saved) and
    used detached: gradients pass through it, it never changes. Label Revision does not apply: no teacher
    prediction supervises the student's output (docs/methods.md §7).
    """

    needs_features = True
    provides_head = True
    accepts_label_revision = False

    def __init__(self, factor: int = 2, beta: float = 1.0) -> None:
        super().__init__()
        if int(factor) < 1:
            raise KdbenchError(f"simkd: factor must be a positive integer, got {factor}")
        self.factor, self.beta = int(factor), float(beta)
        self.projector: nn.Sequential | None = None
        self._student_size: tuple[int, int] | None = None  # pool the student map to this (it is the larger one)
        self._teacher_size: tuple[int, int] | None = None  # pool the teacher map to this (it is the larger one)
        # A plain tuple, so nn.Module registers neither the teacher's head nor its parameters.
        self._teacher_head: tuple[nn.Linear, ...] = ()

    def setup(self, ctx: MethodContext) -> None:
        head = ctx.teacher_classifier
        if head is None:
            raise KdbenchError("simkd needs the teacher's classifier; run it with a teacher")
        s_shape, t_shape = _last_map(ctx.student_feature_shapes, "student"), _last_map(ctx.teacher_feature_shapes,
                                                                                      "teacher")
        (s_c, s_h, s_w), (t_c, t_h, t_w) = s_shape, t_shape
        if head.in_features != t_c:
            raise KdbenchError(
                f"simkd reuses the teacher's classifier on its pooled last map, but the classifier takes "
                f"{head.in_features} inputs and the map (feats[-2]) has {t_c} channels"
            )
        if t_c // self.factor < 1:
            raise KdbenchError(f"simkd: factor {self.factor} leaves no channel of the teacher's {t_c}")
        self.projector = simkd_projector(s_c, t_c, self.factor)
        # The reference compares heights: a larger student map is pooled to the teacher's size, else the teacher's
        # map to the student's (equal sizes: neither).
        self._student_size = (t_h, t_w) if s_h > t_h else None
        self._teacher_size = (s_h, s_w) if s_h < t_h else None
        self._teacher_head = (head,)

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.student_feats is not None and step.teacher_feats is not None
        projected = self._project(step.student_feats[-2])
        target = step.teacher_feats[-2]
        if self._teacher_size is not None:
            target = F.adaptive_avg_pool2d(target, self._teacher_size)
        mse = (upcast(projected) - upcast(target)).pow(2).mean()
        return LossTerms(batch={"simkd": self.beta * mse}, head_logits=self._classify(projected))

    def head_logits(self, student_feats: list[Tensor], student_logits: Tensor) -> Tensor:
        return self._classify(self._project(student_feats[-2]))

    def _project(self, f_s: Tensor) -> Tensor:
        if self.projector is None or not self._teacher_head:
            raise RuntimeError("SimKD.setup() must run before it is used")
        if self._student_size is not None:
            f_s = F.adaptive_avg_pool2d(f_s, self._student_size)
        projected: Tensor = self.projector(f_s)
        return projected

    def _classify(self, projected: Tensor) -> Tensor:
        """The teacher's classifier on the spatial mean of the projected map, in fp32 or wider (autocast off)."""
        head = self._teacher_head[0]
        pooled = upcast(projected).mean(dim=(2, 3))
        with torch.autocast(device_type=pooled.device.type, enabled=False):
            weight = head.weight.detach().to(pooled.dtype)
            bias = head.bias.detach().to(pooled.dtype) if head.bias is not None else None
            return F.linear(pooled, weight, bias)


def _last_map(shapes: Sequence[tuple[int, ...]], side: str) -> tuple[int, int, int]:
    if len(shapes) < 2 or len(shapes[-2]) != 3:
        raise KdbenchError(f"simkd needs the {side}'s last feature map (feats[-2]) as C×H×W, got "
                           f"{tuple(shapes[-2]) if len(shapes) >= 2 else 'none'}")
    c, h, w = (int(v) for v in shapes[-2])
    return c, h, w


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("simkd", SimKD)
