"""The one training loop every method runs in.

The engine owns everything that is not a method's own formula: the SGD recipe and schedule,
on-device batching and augmentation, the frozen teacher's forward pass, mixed precision, how per-sample
terms combine with Data Selection (samples outside D_t get plain CE), per-epoch evaluation, NaN
detection and epoch checkpoints for resume.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from kdbench.data import ImageDataset, PadCropFlip, iterate_batches
from kdbench.methods import DistillationMethod, MethodContext, PairInfo, StepInputs
from kdbench.models import classifier_of, feature_shapes
from kdbench.recipe import lr_at_epoch
from kdbench.store import atomic_torch_save
from kdbench.supervision import Supervision


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops and is recorded as a failure."""


class Reporter(Protocol):
    def start(self, label: str, epochs: int, steps_per_epoch: int, first_epoch: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, metrics: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    def start(self, label: str, epochs: int, steps_per_epoch: int, first_epoch: int) -> None:
        pass

    def step(self) -> None:
        pass

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class EngineConfig:
    """How to train: the resolved recipe plus execution settings that do not change the numbers' meaning."""

    recipe: dict[str, Any]
    seed: int
    device: str = "cpu"
    eval_batch_size: int = 1024
    mixed_precision: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # CUDA only
    checkpoint_every: int = 10  # epochs between resume checkpoints; 0 disables
    label: str = ""


@dataclass
class TrainOutcome:
    epochs: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_images_per_s: float = 0.0

    @property
    def last_top1(self) -> float:
        return self.epochs[-1]["test_top1"]

    @property
    def best(self) -> dict[str, Any]:
        return max(self.epochs, key=lambda m: m["test_top1"])


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        from kdbench.errors import KdbenchError

        raise KdbenchError(f"--device {name} asked for, but torch sees no CUDA device")
    return name


def _autocast(device: str, enabled: bool):
    if enabled and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 1024,
    mixed_precision: bool = True,
) -> float:
    """Top-1 accuracy in percent, in eval mode, restoring the model's mode afterwards."""
    if images.shape[0] == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    correct = 0
    device = str(images.device)
    for batch in iterate_batches(images, labels, batch_size=batch_size, mean=mean, std=std, shuffle=False):
        with _autocast(device, mixed_precision):
            logits = model(batch.images)
        correct += int((logits.argmax(dim=1) == batch.labels).sum())
    model.train(was_training)
    return 100.0 * correct / images.shape[0]


def build_method_context(
    method: DistillationMethod,
    student: nn.Module,
    teacher: nn.Module | None,
    data: ImageDataset,
    pair: PairInfo,
    recipe: dict[str, Any],
) -> MethodContext:
    image_size, channels = data.image_shape[1], data.image_shape[0]
    needs_feats = method.needs_features
    return MethodContext(
        pair=pair,
        num_classes=data.num_classes,
        num_train=data.num_train,
        batch_size=recipe["batch_size"],
        epochs=recipe["epochs"],
        student_feature_shapes=feature_shapes(student, image_size, channels) if needs_feats else [],
        teacher_feature_shapes=(
            feature_shapes(teacher, image_size, channels) if needs_feats and teacher is not None else []
        ),
        teacher_classifier=classifier_of(teacher) if teacher is not None else None,
        train_labels=data.train_labels,
    )


def train(
    student: nn.Module,
    method: DistillationMethod,
    data: ImageDataset,
    config: EngineConfig,
    *,
    teacher: nn.Module | None = None,
    supervision: Supervision | None = None,
    resume_path: Path | None = None,
    reporter: Reporter | None = None,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> TrainOutcome:
    """Train ``student`` with ``method`` (already ``setup``) on ``data`` (already on the device).

    ``supervision`` carries Data Selection's D_t mask and Label Revision; ``on_epoch_end`` lets the
    caller save checkpoints (teacher checkpoints for TracIn) or stop a run.
    """
    recipe, device = config.recipe, config.device
    reporter = reporter or SilentReporter()
    cuda = device.startswith("cuda")
    memory_format = torch.channels_last if (cuda and config.channels_last) else torch.contiguous_format
    student.to(device=device, memory_format=memory_format)
    method.to(device)
    if teacher is not None:
        teacher.to(device=device, memory_format=memory_format).eval()
        teacher.requires_grad_(False)
    supervision = (supervision or Supervision()).to(device)

    params = [p for p in list(student.parameters()) + list(method.parameters()) if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=recipe["lr"],
        momentum=recipe["momentum"],
        weight_decay=recipe["weight_decay"],
        nesterov=recipe["nesterov"],
    )
    outcome, first_epoch = TrainOutcome(), 1
    if resume_path is not None and resume_path.is_file():
        state = torch.load(resume_path, map_location=device, weights_only=False)
        student.load_state_dict(state["student"])
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        outcome = TrainOutcome(state["epochs"], state["wall_time_s"], state["train_images_per_s"])
        first_epoch = state["epoch"] + 1

    augment = PadCropFlip(padding=4, flip=True) if recipe["augment"] else None
    drop_last = recipe["drop_last"] or method.full_batches_only
    needs_feats = method.needs_features
    use_teacher = method.uses_teacher and teacher is not None
    n_train, batch_size, epochs = data.num_train, recipe["batch_size"], recipe["epochs"]
    steps_per_epoch = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    reporter.start(config.label, epochs, steps_per_epoch, first_epoch)

    for epoch in range(first_epoch, epochs + 1):
        lr = lr_at_epoch(recipe["lr"], epoch, recipe["milestones"], recipe["lr_decay"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        method.on_epoch_start(epoch, epochs)
        student.train()
        method.train()
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        # Epoch metrics accumulate on the device: the only per-step host sync is the NaN check.
        sums: dict[str, Tensor] = {}
        seen = 0
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        start = time.perf_counter()
        for batch in iterate_batches(
            data.train_images, data.train_labels, batch_size=batch_size, mean=data.mean, std=data.std,
            shuffle=True, generator=generator, augment=augment, drop_last=drop_last,
            channels_last=memory_format is torch.channels_last,
        ):
            with _autocast(device, config.mixed_precision):
                out = student(batch.images, features=True) if needs_feats else student(batch.images)
                s_feats, s_logits = out if needs_feats else (None, out)
                t_feats = t_logits = None
                if use_teacher:
                    with torch.no_grad():
                        t_out = teacher(batch.images, features=True) if needs_feats else teacher(batch.images)
                        t_feats, t_logits = t_out if needs_feats else (None, t_out)
                step = StepInputs(
                    student_logits=s_logits, targets=batch.labels, indices=batch.indices, epoch=epoch,
                    teacher_logits=t_logits, student_feats=s_feats, teacher_feats=t_feats,
                )
                terms = method.loss_terms(step)
                loss, logged = supervision.batch_loss(terms, s_logits, t_logits, batch.labels, batch.indices)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = batch.labels.shape[0]
            seen += n
            loss_sum += loss.detach() * n
            correct += (s_logits.detach().argmax(1) == batch.labels).sum()
            for name, value in logged.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float().mean() * n
            reporter.step()
        if cuda:
            torch.cuda.synchronize()
        train_time = time.perf_counter() - start
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_top1": 100.0 * int(correct) / max(seen, 1),
            **{f"loss_{k}": float(v) / max(seen, 1) for k, v in sums.items()},
            "test_top1": evaluate(
                student, data.test_images, data.test_labels, data.mean, data.std,
                config.eval_batch_size, config.mixed_precision,
            ),
            "epoch_time_s": train_time,
            "train_images_per_s": seen / train_time if train_time > 0 else float("nan"),
        }
        if data.val_images.shape[0]:
            metrics["val_top1"] = evaluate(
                student, data.val_images, data.val_labels, data.mean, data.std,
                config.eval_batch_size, config.mixed_precision,
            )
        outcome.epochs.append(metrics)
        outcome.wall_time_s += time.perf_counter() - start
        done = [m["train_images_per_s"] for m in outcome.epochs if m["train_images_per_s"] == m["train_images_per_s"]]
        outcome.train_images_per_s = sum(done) / len(done) if done else float("nan")
        reporter.epoch_end(metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch, student)
        every = config.checkpoint_every
        if resume_path is not None and every and epoch % every == 0 and epoch < epochs:
            atomic_torch_save(
                {
                    "epoch": epoch,
                    "student": student.state_dict(),
                    "method": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epochs": outcome.epochs,
                    "wall_time_s": outcome.wall_time_s,
                    "train_images_per_s": outcome.train_images_per_s,
                },
                resume_path,
            )
    reporter.finish()
    return outcome
