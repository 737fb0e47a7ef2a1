"""The one training loop every method runs in.

The engine owns everything that is not a method's own formula: the SGD recipe and schedule,
on-device batching and augmentation, the frozen teacher's outputs (its live forward pass, or the exact
teacher-output cache of ``kdbench.train.teacher_outputs``), mixed precision, how per-sample
terms combine with Data Selection and Label Revision (``Supervision``), per-epoch evaluation and NaN
detection. It writes no file: resume state goes through a :class:`Checkpointer` the caller gives, and
whatever else hears about the run (progress, loggers, a pruner, a teacher's kept checkpoints) is one of
the ``callbacks`` (``kdbench.train.callbacks``).

The hot loop makes no host sync: epoch sums and the NaN flag stay on the device until the epoch ends,
so a CUDA step queues its kernels and moves on (the profile is in ``benchmarks/profile_step.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from kdbench.contracts import DistillationMethod, LossTerms, StepInputs, TrainingRecipe
from kdbench.contracts.models import forward_features
from kdbench.train.batches import Batch
from kdbench.train.callbacks import Callback, Callbacks, EpochEnd, TrainingStart
from kdbench.train.distributed import (
    Shard,
    any_rank,
    average_gradients,
    broadcast_buffers,
    check_shard,
    shares_of_global_batch,
    sum_over_ranks,
    wrap_student,
)
from kdbench.train.evaluate import Accuracy, autocast, eval_batch_size, hit_counts
from kdbench.train.outcome import EpochMetrics, TrainOutcome
from kdbench.train.sources import AnyDataset, BatchSource, SourceSettings, open_source
from kdbench.train.supervision import BatchLoss, Supervision
from kdbench.train.teacher_outputs import LiveTeacher, TeacherLogits


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops and is recorded as a failure."""


@dataclass(frozen=True)
class EngineConfig:
    """How to train: the resolved recipe plus execution settings that do not change what is computed."""

    recipe: TrainingRecipe
    seed: int
    device: str = "cpu"
    eval_batch_size: int = 1024
    mixed_precision: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # the memory format of images and networks (CPU and CUDA)
    checkpoint_every: int = 10  # epochs between resume checkpoints (with a checkpointer); 0 disables
    label: str = ""
    loader_workers: int = 4  # decoding processes of a streamed dataset (ignored for data held on the device)
    shard: Shard = Shard()  # this process's rank among the DDP processes of one run (set up by the caller)


class Checkpointer(Protocol):
    """Keeps the resume state of one run: the engine says what to keep, the checkpointer where."""

    def load(self, device: str) -> dict[str, Any] | None: ...
    def save(self, state: dict[str, Any]) -> None: ...


def train(
    student: nn.Module,
    method: DistillationMethod,
    data: AnyDataset,
    config: EngineConfig,
    *,
    teacher: nn.Module | None = None,
    teacher_logits: TeacherLogits | None = None,
    supervision: Supervision | None = None,
    checkpointer: Checkpointer | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainOutcome:
    """Train ``student`` with ``method`` (already ``setup``) on ``data``: an ``ImageDataset`` already on the
    device, or a ``StreamedDataset`` read from disk (``kdbench.train.sources``), through the same loop.

    ``teacher_logits`` serves the teacher's logits to a method that reads nothing else (the teacher-output
    cache); by default, and always for methods that need the teacher's features, the teacher runs live.
    ``supervision`` carries Data Selection's D_t mask and Label Revision. With a ``checkpointer`` the run
    resumes from its last saved epoch and saves every ``config.checkpoint_every`` epochs (rank 0 only), after
    the ``callbacks``, which hear about every step and epoch in list order (one may raise ``StopTraining``).
    With ``config.shard.world`` > 1 this process is one rank of a DDP run whose process group is already up.
    """
    recipe, shard = config.recipe, config.shard
    memory_format = torch.channels_last if _uses_channels_last(config) else torch.contiguous_format
    _place(student, method, teacher, config.device, memory_format)
    supervision = (supervision or Supervision()).to(config.device)
    optimizer = _optimizer(student, method, recipe)
    outcome, first_epoch = _restore(checkpointer, config.device, student, method, optimizer)
    if checkpointer is not None and shard.writes and config.checkpoint_every:
        callbacks = [*callbacks, _ResumeCheckpoints(checkpointer, config.checkpoint_every, recipe.epochs,
                                                    lambda epoch: _state(epoch, student, method, optimizer, outcome))]
    hear = Callbacks(callbacks)
    # a student judged through the method's head leaves its own classifier out of the loss: DDP must allow that
    wrapped = wrap_student(student, shard, config.device, find_unused_parameters=method.provides_head)
    nets = _Networks.of(wrapped, teacher, teacher_logits, method, recipe.compile)
    judged = _JudgedThroughHead(student, method) if method.provides_head else student
    source = open_source(data, SourceSettings(
        batch_size=recipe.batch_size, augment=recipe.augment, drop_last=recipe.drop_last or method.full_batches_only,
        device=config.device, eval_batch_size=eval_batch_size(config.device, config.eval_batch_size),
        channels_last=_uses_channels_last(config),
        loader_workers=config.loader_workers, shard=shard, strong_view=method.needs_strong_view))
    try:
        check_shard(recipe.batch_size, source.size("train"), shard)
        hear.start(TrainingStart(config.label, recipe.epochs, source.steps, first_epoch))
        for epoch in range(first_epoch, recipe.epochs + 1):
            start = time.perf_counter()
            metrics = _train_epoch(nets, method, source, supervision, optimizer, config, epoch, hear)
            broadcast_buffers(judged, shard)
            test = _evaluate(judged, source, "test", config)
            evaluated = {"test_top1": test.top1, "test_top5": test.top5}
            if source.size("val"):
                val = _evaluate(judged, source, "val", config)
                evaluated.update(val_top1=val.top1, val_top5=val.top5)
            metrics = metrics.model_copy(update=evaluated)
            outcome.add(metrics, time.perf_counter() - start)
            hear.epoch_end(EpochEnd(metrics, student))
        hear.finish()
    finally:
        source.close()
    return outcome


def _evaluate(model: nn.Module, source: BatchSource, split: str, config: EngineConfig) -> Accuracy:
    """Top-1/top-5 on a split; under DDP each rank counts its share and the counts are summed."""
    counts = hit_counts(model, source.eval_batches(split), config.device, config.mixed_precision)
    return Accuracy.of_counts(sum_over_ranks(counts, config.shard))


class _JudgedThroughHead(nn.Module):
    """The student as its method's own head judges it (``DistillationMethod.provides_head``, e.g. SimKD's projector
    and the teacher's reused classifier): what every evaluation of such a run measures."""

    def __init__(self, student: nn.Module, method: DistillationMethod) -> None:
        super().__init__()
        self.student, self.method = student, method

    def forward(self, images: Tensor) -> Tensor:
        feats, logits = forward_features(self.student, images, preact=self.method.student_preact)  # as in training
        return self.method.head_logits(feats, logits)


def _judged_logits(method: DistillationMethod, step: StepInputs, terms: LossTerms | None) -> Tensor:
    """The logits a training step judges the student by: its own, or its method's head's (given with the loss
    terms, so that the head runs once a step and a BatchNorm in it moves once)."""
    if not method.provides_head or terms is None:
        return step.student_logits
    if terms.head_logits is None:
        raise ValueError(f"{type(method).__name__} provides its own head: its loss_terms must give head_logits")
    return terms.head_logits


def _uses_channels_last(config: EngineConfig) -> bool:
    return config.channels_last


def _place(student: nn.Module, method: DistillationMethod, teacher: nn.Module | None, device: str,
           memory_format: torch.memory_format) -> None:
    """Everything on the device; the teacher frozen and in eval mode for the whole run."""
    student.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]  # torch's stubs lack it
    method.to(device)
    if teacher is not None:
        teacher.to(device=device, memory_format=memory_format).eval()  # type: ignore[call-overload]  # as above
        teacher.requires_grad_(False)


def _optimizer(student: nn.Module, method: DistillationMethod, recipe: TrainingRecipe) -> torch.optim.SGD:
    """One SGD over the student and the method's extra modules: same lr, momentum, decay and schedule."""
    params = [p for p in list(student.parameters()) + list(method.parameters()) if p.requires_grad]
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                           nesterov=recipe.nesterov)


def _state(epoch: int, student: nn.Module, method: DistillationMethod, optimizer: torch.optim.Optimizer,
           outcome: TrainOutcome) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "student": student.state_dict(),
        "method": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epochs": [m.as_dict() for m in outcome.epochs],
        "wall_time_s": outcome.wall_time_s,
        "train_images_per_s": outcome.train_images_per_s,
    }


def _restore(checkpointer: Checkpointer | None, device: str, student: nn.Module, method: DistillationMethod,
             optimizer: torch.optim.Optimizer) -> tuple[TrainOutcome, int]:
    """The outcome so far and the first epoch to train: from the checkpointer's state, else from scratch."""
    state = checkpointer.load(device) if checkpointer is not None else None
    if state is None:
        return TrainOutcome(), 1
    student.load_state_dict(state["student"])
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    epochs = [EpochMetrics.from_dict(m) for m in state["epochs"]]
    return TrainOutcome(epochs, state["wall_time_s"], state["train_images_per_s"]), state["epoch"] + 1


class _ResumeCheckpoints(Callback):
    """Saves the resume state every ``every`` epochs (not after the last: the record follows)."""

    def __init__(self, checkpointer: Checkpointer, every: int, epochs: int,
                 state: Callable[[int], dict[str, Any]]) -> None:
        self.checkpointer, self.every, self.epochs, self.state = checkpointer, every, epochs, state

    def epoch_end(self, end: EpochEnd) -> None:
        epoch = end.metrics.epoch
        if epoch % self.every == 0 and epoch < self.epochs:
            self.checkpointer.save(self.state(epoch))


@dataclass(frozen=True)
class _Networks:
    """What a step calls: the student (compiled or not), the teacher's logits and, for feature methods,
    the live teacher, plus the method's loss (compiled or not)."""

    student: nn.Module
    teacher: nn.Module | None
    teacher_logits: TeacherLogits | None
    loss_terms: Callable[[StepInputs], Any]

    @classmethod
    def of(cls, student: nn.Module, teacher: nn.Module | None, teacher_logits: TeacherLogits | None,
           method: DistillationMethod, compile: bool) -> _Networks:
        if not method.uses_teacher:
            teacher, teacher_logits = None, None
        elif teacher_logits is None and teacher is not None:
            teacher_logits = LiveTeacher(teacher)
        if method.needs_features and teacher_logits is not None and teacher is None:
            raise ValueError(f"{type(method).__name__} needs the teacher's features: give the live teacher")
        if method.needs_strong_view and teacher_logits is not None and teacher is None:
            raise ValueError(f"{type(method).__name__} reads the teacher on the strong view: give the live teacher")
        if compile:  # same function, fused kernels: an execution choice, not part of the run key
            compiled = cast(nn.Module, torch.compile(student))  # an OptimizedModule: torch types it as any callable
            return cls(compiled, teacher, teacher_logits, torch.compile(method.loss_terms))
        return cls(student, teacher, teacher_logits, method.loss_terms)


def _forward(nets: _Networks, method: DistillationMethod, batch: Batch, epoch: int,
             supervision: Supervision) -> StepInputs:
    """Both networks on one batch: features only for methods that need them, the teacher without grad."""
    needs_feats = method.needs_features
    s_feats: list[Tensor] | None = None
    if needs_feats:
        s_feats, s_logits = forward_features(nets.student, batch.images, preact=method.student_preact)
    else:
        s_logits = nets.student(batch.images)
    t_feats = t_logits = None
    if needs_feats and nets.teacher is not None:
        with torch.no_grad():
            t_feats, t_logits = forward_features(nets.teacher, batch.images, preact=method.teacher_preact)
    elif nets.teacher_logits is not None:
        t_logits = nets.teacher_logits(batch)
    s_strong = t_strong = None
    if method.needs_strong_view:  # the strong view: its own forward passes; the teacher live (no cache has it)
        if batch.strong_images is None:
            raise ValueError(f"{type(method).__name__} needs a strong view, and the batch has none")
        s_strong = nets.student(batch.strong_images)
        if nets.teacher is not None:
            with torch.no_grad():
                t_strong = nets.teacher(batch.strong_images)
    return StepInputs(
        student_logits=s_logits, targets=batch.labels, epoch=epoch,
        indices=batch.indices if method.needs_indices else None,
        teacher_logits=t_logits, student_feats=s_feats, teacher_feats=t_feats,
        revise_teacher=supervision.teacher_revision,
        student_logits_strong=s_strong, teacher_logits_strong=t_strong,
    )


def _train_epoch(
    nets: _Networks,
    method: DistillationMethod,
    source: BatchSource,
    supervision: Supervision,
    optimizer: torch.optim.Optimizer,
    config: EngineConfig,
    epoch: int,
    hear: Callback,
) -> EpochMetrics:
    """One pass over the training set; evaluation fields are left for the caller (``test_top1`` nan)."""
    recipe, device, shard = config.recipe, config.device, config.shard
    lr = recipe.lr_at(epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    method.on_epoch_start(epoch, recipe.epochs)
    student = nets.student
    student.train()
    method.train()
    # Epoch metrics and the NaN flag accumulate on the device: no host sync until the epoch ends.
    sums: dict[str, Tensor] = {}
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    finite = torch.ones((), dtype=torch.bool, device=device)
    seen = skipped = 0
    start = time.perf_counter()
    for batch in source.train_epoch(config.seed, epoch):
        skipped += batch.skipped
        rows = len(batch)
        if not rows and not shard.distributed:  # every file of a streamed batch was unreadable
            continue
        with autocast(device, config.mixed_precision):
            step = _forward(nets, method, batch, epoch, supervision)
            terms = nets.loss_terms(step) if rows else None
            logits = _judged_logits(method, step, terms)
            loss = (supervision.batch_loss(terms, logits, step.teacher_logits, batch.labels, batch.indices)
                    if terms is not None else None)
        if shard.distributed:
            objective, loss_times_rows, logged = _rank_share(loss, logits, supervision, rows, shard, device)
        else:
            assert loss is not None
            objective, loss_times_rows, logged = _one_process_share(loss, rows)
        finite &= torch.isfinite(objective.detach())
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        average_gradients(method.parameters(), shard)
        optimizer.step()
        seen += rows
        loss_sum += loss_times_rows
        correct += (logits.detach().argmax(1) == batch.labels).sum()
        for name, value in logged.items():
            sums[name] = sums.get(name, 0.0) + value
        hear.step()
    # one sync per epoch; the epoch's later steps computed on garbage and are discarded
    if any_rank(not bool(finite), shard, device):
        raise TrainingDiverged(f"loss became non-finite in epoch {epoch}")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    names = sorted(sums)
    # float64: the float32 sums and the integer counts convert exactly, so one process's numbers are unchanged
    local = [loss_sum, correct, torch.tensor(seen, device=device), torch.tensor(skipped, device=device),
             *[sums[k] for k in names]]
    totals = sum_over_ranks(torch.stack([v.double() for v in local]), shard).tolist()
    loss_total, correct_total, seen, skipped = totals[0], totals[1], int(totals[2]), int(totals[3])
    sums_total = dict(zip(names, totals[4:], strict=True))
    return EpochMetrics(
        epoch=epoch,
        lr=lr,
        train_loss=loss_total / max(seen, 1),
        train_top1=100.0 * round(correct_total) / max(seen, 1),
        test_top1=float("nan"),
        epoch_time_s=seconds,
        train_images_per_s=seen / seconds if seconds > 0 else float("nan"),
        losses={k: v / max(seen, 1) for k, v in sums_total.items()},
        unreadable=skipped if source.streamed else None,
    )


def _one_process_share(loss: BatchLoss, rows: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """What one process minimises, and adds to its epoch sums: the loss × rows and each named term × rows."""
    objective = loss.total()
    logged = {name: value.detach().float().mean() * rows for name, value in loss.named_terms().items()}
    return objective, objective.detach() * rows, logged


def _rank_share(loss: BatchLoss | None, logits: Tensor, supervision: Supervision, rows: int, shard: Shard,
                device: str) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """A DDP rank's share of one global batch (docs/methods.md §1).

    Each loss part is weighted by ``world · c_r / Σ c``, its subset's size here over the global one, so the
    gradient DDP averages over the ranks is that of the global batch's loss, also when the batch splits
    unevenly. The epoch-sum contributions are weighted the same way: summed over the ranks they are what one
    process adds for the whole batch. A rank with no rows (a last batch smaller than the process count)
    takes part in the gradient all-reduce with zero gradients.
    """
    def count(c: Tensor | int | None) -> Tensor:  # a fill kernel or a cast on the device: no host sync
        if isinstance(c, Tensor):
            return c.to(torch.float64)
        return torch.full((), float(rows if c is None else c), dtype=torch.float64, device=device)

    parts = [c for _, c in loss.parts.values()] if loss is not None else [0] * len(supervision.part_names)
    share, totals = shares_of_global_batch(torch.stack([count(rows), *(count(c) for c in parts)]), shard)
    if loss is None:
        return logits.sum() * 0.0, torch.zeros((), device=device), {}
    weights = (share[1:] * shard.world).float()
    global_rows = totals[0]
    objective = torch.zeros((), device=device)
    loss_times_rows = torch.zeros((), dtype=torch.float64, device=device)
    logged = {}
    for i, (name, (mean, _)) in enumerate(loss.parts.items()):
        objective = objective + mean * weights[i].to(mean.dtype)
        part_times_rows = mean.detach().double() * share[i + 1] * global_rows
        loss_times_rows = loss_times_rows + part_times_rows
        if not name.startswith("_"):
            logged[name] = part_times_rows.float()
    logged.update({name: value.detach().float().mean() * rows for name, value in loss.logged.items()})
    return objective, loss_times_rows.float(), logged
