"""FitNet: match one intermediate student feature map to the teacher's through a learned regressor.

Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015. The student's "guided" layer is mapped
to the teacher's "hint" layer by a small trainable regressor and the squared error between the two is
minimised. As in the CIFAR-100 benchmarks (RepDistiller, docs/methods.md §4) the hint is trained jointly
with the task loss in one stage, without the paper's separate hint pre-training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

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


def hint_regressor(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Sequential:
    """Conv (with bias) + BN + ReLU mapping a ``C_s×H_s×W_s`` map to ``C_t×H_t×W_t``.

    The convolution is chosen from the spatial sizes, as in RepDistiller's ``ConvReg``: a stride-2 3×3
    (padding 1) when the student map is twice as large, a 4×4 stride-2 transposed convolution (padding
    1) when it is half as large, otherwise an unpadded ``(1+ΔH)×(1+ΔW)`` kernel that shrinks the student
    map by exactly Δ = student size − teacher size (1×1 when the sizes agree).
    """
    if len(student_shape) != 3 or len(teacher_shape) != 3:
        raise KdbenchError(
            f"fitnet needs C×H×W feature maps at the hint layer, got student {tuple(student_shape)} "
            f"and teacher {tuple(teacher_shape)}; pick another hint_layer"
        )
    s_c, s_h, s_w = (int(v) for v in student_shape)
    t_c, t_h, t_w = (int(v) for v in teacher_shape)
    conv: nn.Module
    if (s_h, s_w) == (2 * t_h, 2 * t_w):
        conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
    elif (2 * s_h, 2 * s_w) == (t_h, t_w):
        conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
    elif s_h >= t_h and s_w >= t_w:
        conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
    else:
        raise KdbenchError(
            f"fitnet cannot map a student hint map of {s_h}×{s_w} to a larger teacher map of {t_h}×{t_w} "
            "unless it is exactly half its size; pick another hint_layer"
        )
    return nn.Sequential(conv, nn.BatchNorm2d(t_c), nn.ReLU(inplace=False))


class FitNet(DistillationMethod):
    """FitNet hints (Romero et al., ICLR 2015): γ·CE + β·mean((reg(fs) − ft)²) on one stage.

    The student and teacher usually differ in width and sometimes in resolution at the same depth, so
    a regressor (:func:`hint_regressor`) built from the real feature shapes in :meth:`setup` brings the
    student map to the teacher's shape; it is trained with the student. ``hint_layer`` indexes the
    feature list ``[stem, stage1, ..., stageK, pooled]`` (default 2, the middle stage of the CIFAR
    ResNets, as in RepDistiller). ``alpha`` optionally adds Hinton KD at temperature ``T`` (off by
    default, docs/methods.md §4).
    """

    needs_features = True
    owns_logit_loss = False

    def __init__(
        self,
        beta: float = 100.0,
        gamma: float = 1.0,
        hint_layer: int = 2,
        alpha: float = 0.0,
        T: float = 4.0,
    ) -> None:
        super().__init__()
        self.beta, self.gamma, self.alpha, self.T = float(beta), float(gamma), float(alpha), float(T)
        self.hint_layer = int(hint_layer)
        self.regressor: nn.Sequential | None = None

    def setup(self, ctx: MethodContext) -> None:
        s_shapes, t_shapes = ctx.student_feature_shapes, ctx.teacher_feature_shapes
        for side, shapes in (("student", s_shapes), ("teacher", t_shapes)):
            if not -len(shapes) <= self.hint_layer < len(shapes):
                raise KdbenchError(
                    f"fitnet hint_layer={self.hint_layer} is out of range for the {side}'s "
                    f"{len(shapes)} feature maps"
                )
        self.regressor = hint_regressor(s_shapes[self.hint_layer], t_shapes[self.hint_layer])

    def loss_terms(self, step: StepInputs) -> LossTerms:
        if self.regressor is None:
            raise RuntimeError("FitNet.setup() must run before loss_terms()")
        assert step.student_feats is not None and step.teacher_feats is not None
        f_s = step.student_feats[self.hint_layer]
        f_t = step.teacher_feats[self.hint_layer]
        hint = (upcast(self.regressor(f_s)) - upcast(f_t)).pow(2).mean()
        sample = ce_and_kd_terms(step, self.gamma, self.alpha, self.T)
        return LossTerms(sample=sample, batch={"fitnet": self.beta * hint})


@hookimpl
def kdbench_register_methods(register: Callable[..., None]) -> None:
    register("fitnet", FitNet)
