"""What one epoch of training measures: declared once, for the engine and for the stored record.

The engine's ``EpochMetrics`` (``kdbench.train.outcome``) and the store's ``EpochRecord``
(``kdbench.store.records``) both extend :class:`EpochFields`, so a field added here reaches the record,
the resume state, the DDP result file and the loggers without a second copy that has to agree. The
loss terms are not fields: each method names its own, so they travel beside these as ``loss_<name>``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EpochFields(BaseModel):
    """One epoch: its schedule, training loss and accuracy, evaluations and speed (docs/methods.md §1)."""

    model_config = ConfigDict(frozen=True)

    epoch: int
    lr: float
    train_loss: float
    train_top1: float
    test_top1: float
    epoch_time_s: float
    train_images_per_s: float
    val_top1: float | None = None  # only with a validation split
    test_top5: float | None = None  # since record schema 3
    val_top5: float | None = None  # since record schema 3
    unreadable: int | None = None  # streamed images skipped this epoch as undecodable (image folders only)


#: Fields that are left out of a flat epoch (a record, a log line) when they were not measured.
OPTIONAL_EPOCH_FIELDS: tuple[str, ...] = tuple(
    name for name, info in EpochFields.model_fields.items() if not info.is_required()
)

#: The prefix of a loss term's name in a flat epoch.
LOSS_PREFIX = "loss_"
