"""The typed records kdbench stores: one finished run, one failure, one teacher, with a schema version.

Records are the data every table, plot and leaderboard is derived from, so they are validated on the
way in and on the way out: a field renamed in one place fails here instead of emptying a table column
somewhere else. A record file that is corrupt or invalid is skipped with a one-line warning, never
tabled and never published.

Schema versions: 1, the records before versions were written; 2 adds where a run ran (host, device
name, executor) and the note of a published record it replaced; 3 adds whether the run read its teacher's
logits from the teacher-output cache, whether it ran compiled, and top-5 accuracy (per epoch, the last
epoch's on the run, the teacher's). Older records read as they are. ``evaluated_head`` (which head the
accuracies measure) is left out of the JSON for the student's own classifier, so it needs no new version.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_serializer,
    model_validator,
)

from kdbench.contracts.epochs import LOSS_PREFIX, OPTIONAL_EPOCH_FIELDS, EpochFields
from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import RunSpec, TeacherSpec
from kdbench.store.files import read_json

SCHEMA_VERSION = 3


Spec = TypeVar("Spec", RunSpec, TeacherSpec)


def _from_json(cls: type[Spec]) -> Callable[[Any], Spec]:
    """A spec stored in its JSON form is read back with its own ``from_dict``: pydantic never coerces its
    values, so the key computed from a record is the key the run had."""

    def validate(value: Any) -> Spec:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected a {cls.__name__} mapping")
        try:
            return cls.from_dict(value)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a {cls.__name__}: {type(exc).__name__}: {exc}") from exc

    return validate


def _to_json(spec: RunSpec | TeacherSpec) -> dict[str, Any]:
    return spec.to_dict()


RunSpecField = Annotated[RunSpec, PlainValidator(_from_json(RunSpec)), PlainSerializer(_to_json, return_type=dict)]
TeacherSpecField = Annotated[TeacherSpec, PlainValidator(_from_json(TeacherSpec)),
                             PlainSerializer(_to_json, return_type=dict)]


class EpochRecord(EpochFields):
    """One epoch of a run, as the engine measured it; loss terms are the extra ``loss_<name>`` fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _extras_are_loss_terms(self) -> EpochRecord:
        for name, value in (self.model_extra or {}).items():
            if not name.startswith(LOSS_PREFIX) or not isinstance(value, int | float):
                raise ValueError(f"unexpected epoch field {name!r}: extra fields are loss terms 'loss_<name>'")
        return self

    @model_serializer(mode="wrap")
    def _without_missing_val(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for optional in OPTIONAL_EPOCH_FIELDS:
            if data.get(optional) is None:
                data.pop(optional, None)  # not measured (no validation split, an older record): no field
        return data

    @property
    def losses(self) -> dict[str, float]:
        return {k.removeprefix(LOSS_PREFIX): float(v) for k, v in (self.model_extra or {}).items()}


class DetectionRecord(BaseModel):
    """How well one estimator's scores flag the flipped labels of a noisy training set (docs/methods.md §12)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimator: str
    auroc: float
    precision_at_k: float
    k: int  # flipped training labels
    suspect_when: str  # which end of the score is read as suspicious: "high" or "low"
    samples: int
    seconds: float  # scoring time
    found_at_10: float | None = None  # share of the flipped labels among the most suspicious 10% (None: older)


class SelectionRecord(BaseModel):
    """How Data Selection split the training set for one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher_samples: int  # |D_t|: the selected samples (with mode drop: the removed ones, trained on by no one)
    samples: int
    removed_samples: int | None = None  # mode drop: how many samples were removed from training
    scores_key: str | None = None
    estimator_info: dict[str, Any] | None = None  # the settings the estimator actually used
    score_seconds: float | None = None
    teacher_correct_in_dt: float | None = None
    teacher_correct_in_ds: float | None = None
    detection: DetectionRecord | None = None  # with label noise: how well the scores flag the flipped labels

    @model_serializer(mode="wrap")
    def _without_removed_unless_dropped(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("removed_samples") is None:
            data.pop("removed_samples", None)  # a teacher-mode record keeps the shape it always had
        return data


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(_Record):
    """Where and with what a run ran: its provenance."""

    python: str
    platform: str
    torch: str
    kdbench: str
    device: str  # as asked for: cpu, cuda, cuda:1
    cpu_count: int | None = None
    torch_threads: int | None = None
    gpu: str | None = None  # the CUDA device's name
    cuda: str | None = None  # torch's CUDA version
    host: str | None = None  # since schema 2
    device_name: str | None = None  # the GPU, else the CPU model (since schema 2)
    executor: str | None = None  # the executor plugin that ran it (since schema 2)
    cpu_capability: str | None = None  # the CPU kernels torch picked (AVX2, AVX512, ...): one CPU model name, two ISAs
    # "channels_last" or "contiguous" (since 0.1.0's CPU channels_last); None in older records: contiguous on a
    # CPU, channels_last on CUDA
    memory_format: str | None = None

    @property
    def memory_format_used(self) -> str:
        """The memory format the run trained in, also for records written before it was recorded."""
        if self.memory_format is not None:
            return self.memory_format
        return "channels_last" if self.device.startswith("cuda") else "contiguous"

    @property
    def device_class(self) -> str:
        """``GPU`` or ``CPU``: the same spec trained on the two takes other kernels and gives other numbers, so
        their runs are two results of one key, and the leaderboard never averages or ranks them together."""
        return "GPU" if self.device.startswith("cuda") else "CPU"


class Replacement(_Record):
    """A published record that ``kdbench publish --replace`` replaced, noted in the record replacing it."""

    at: float  # when it was replaced
    finished_at: float
    git_revision: str | None
    best_top1: float
    last_top1: float
    host: str | None = None

    @classmethod
    def of(cls, record: RunRecord, at: float) -> Replacement:
        return cls(at=at, finished_at=record.finished_at, git_revision=record.git_revision,
                   best_top1=record.best_top1, last_top1=record.last_top1, host=record.environment.host)


class TeacherCacheRecord(_Record):
    """Where a run's teacher logits came from (since schema 3): the exact teacher-output cache or the live
    teacher, and why (docs/methods.md §11)."""

    used: bool
    reason: str  # e.g. "auto: 240 epochs × 1 run > 162 views", "off", "out of device memory"
    key: str | None = None  # the table's content key
    dtype: str | None = None
    views: int | None = None
    built_seconds: float | None = None  # when this run built the table
    max_abs_error: float | None = None  # float16 tables: the largest |fp16 − fp32| logit over the table
    max_rel_error: float | None = None  # ... relative to the largest |logit|


class RunRecord(_Record):
    """A finished run: its resolved spec, per-epoch metrics, results, cost and provenance."""

    schema_version: int = SCHEMA_VERSION
    status: Literal["finished"] = "finished"
    key: str
    suite: str
    label: str
    method: str
    student: str
    teacher: str | None
    pair: str
    seed: int
    dataset: str
    spec: RunSpecField
    last_top1: float
    best_top1: float
    best_epoch: int
    last_top5: float | None = None  # since schema 3
    teacher_top1: float | None
    teacher_key: str | None
    selection: SelectionRecord | None
    metrics: list[EpochRecord] = Field(min_length=1)
    wall_time_s: float
    train_images_per_s: float
    environment: Environment
    git_revision: str | None
    finished_at: float
    replaced: list[Replacement] = Field(default_factory=list)
    teacher_cache: TeacherCacheRecord | None = None  # None: no teacher logits (or a record before schema 3)
    compiled: bool = False  # the student and loss ran through torch.compile
    processes: int = 1  # DDP processes the run trained on (recipe.devices or --nproc)
    flipped_train: list[int] | None = None  # training indices whose label noise flipped (label_noise runs only)
    # Which head the accuracies measure: the student's own classifier, or its method's (SimKD's projector and the
    # teacher's reused classifier). Left out of the JSON for "student", so records before it read unchanged.
    evaluated_head: Literal["student", "method"] = "student"

    @model_serializer(mode="wrap")
    def _without_empty_replacements(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("replaced"):
            data.pop("replaced", None)  # most records never replaced anything
        for optional in ("teacher_cache", "compiled", "last_top5", "flipped_train"):
            if not data.get(optional):
                data.pop(optional, None)
        if data.get("processes") == 1:
            data.pop("processes", None)
        if data.get("evaluated_head") == "student":
            data.pop("evaluated_head", None)
        return data

    def under(self, spec: RunSpec) -> RunRecord:
        """The same result filed under another suite's spec (same key, another suite, label or order)."""
        return self.model_copy(update={"suite": spec.suite, "label": spec.label, "spec": spec})


class FailureRecord(_Record):
    """The last failure of a run that has no result; it is retried next time and never tabled."""

    schema_version: int = SCHEMA_VERSION
    status: Literal["failed"] = "failed"
    error: str
    traceback: str | None = None
    spec: RunSpecField
    at: float


class TeacherCheckpoint(_Record):
    """A checkpoint kept along a harness-trained teacher's training (TracIn reads them)."""

    epoch: int
    lr: float
    file: str  # relative to the teacher's directory


class TeacherRecord(_Record):
    """A teacher: trained by the harness (its training metrics), or an external checkpoint (its path)."""

    schema_version: int = SCHEMA_VERSION
    status: Literal["finished"] = "finished"
    key: str
    arch: str
    test_top1: float
    test_top5: float | None = None  # since schema 3
    best_top1: float | None = None
    checkpoint: str | None = None  # an external checkpoint's path
    checkpoints: list[TeacherCheckpoint] = Field(default_factory=list)
    metrics: list[EpochRecord] = Field(default_factory=list)
    wall_time_s: float | None = None
    environment: Environment | None = None
    git_revision: str | None = None
    spec: TeacherSpecField | None = None
    saved_at: float | None = None


Record = TypeVar("Record", bound=BaseModel)


def read_finished(path: Path, model: type[Record], what: str) -> Record | None:
    """The finished record at ``path``; None when there is none, when it is not finished, or when the file
    is corrupt or not a valid record (then with a one-line warning naming the path and the field)."""
    if not path.is_file():
        return None
    data = read_json(path)
    if data is None:
        warnings.warn(f"{path}: not readable as JSON (a partial or corrupt file); skipped", KdbenchWarning,
                      stacklevel=2)
        return None
    if isinstance(data, dict) and data.get("status") != "finished":
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        warnings.warn(f"{path}: not a valid {what} ({field}: {err['msg']}); skipped", KdbenchWarning, stacklevel=2)
        return None
