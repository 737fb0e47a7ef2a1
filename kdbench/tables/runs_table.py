"""``results/runs.parquet``: every published run record as one row of one table, for pandas, DuckDB or Polars.

The schema is :data:`COLUMNS`, declared once: each column's name, Arrow type, whether it may be null, what it
means, and how it is read from a record. The file's schema, the field descriptions stored in it and the README's
table (``python -m kdbench.tables.runs_table`` prints it) all come from that list.

One row per published record file: a run published under two suites has a row under each (the same ``key``;
``drop_duplicates("key")`` counts it once). The columns of :func:`kdbench.tables.frame.record_row` keep its names
and meanings (``ds_*`` Data Selection, ``lr_*`` Label Revision, ``noise_*``); the recipe's fields are
``recipe_*``. The bytes depend on the records alone (rows sorted by path, a fixed schema, no pandas index, no
build time), so the committed file changes only when a record does (or the pyarrow that writes it).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kdbench.plan.spec import LabelNoise, canonical_json
from kdbench.store import write_outputs
from kdbench.store.published_files import PublishedFile
from kdbench.tables.frame import record_row

RUNS_PARQUET = "runs.parquet"
START, END = "<!-- runs-parquet: start -->", "<!-- runs-parquet: end -->"


@dataclass(frozen=True)
class Run:
    """A published file with its :func:`record_row` flattening, computed once for all columns."""

    file: PublishedFile
    row: dict[str, object]


@dataclass(frozen=True)
class Column:
    """One column of ``runs.parquet``: its name, type, meaning, and its value for a run."""

    name: str
    type: pa.DataType
    meaning: str
    value: Callable[[Run], Any]
    nullable: bool = False

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, self.nullable, metadata={"description": self.meaning})

    @property
    def type_name(self) -> str:
        name = f"list<{self.type.value_type}>" if pa.types.is_list(self.type) else str(self.type)
        return f"{name} or null" if self.nullable else name


def _row(name: str) -> Callable[[Run], Any]:
    return lambda run: run.row[name]


def _noise(run: Run) -> LabelNoise | None:
    dataset = run.file.record.spec.dataset
    return dataset.label_noise if dataset.noisy else None


def _json(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


STRING, INT, FLOAT, BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
S = Column  # the table below reads as a table

#: The columns of ``runs.parquet``, in order.
COLUMNS: tuple[Column, ...] = (
    # what ran
    S("key", STRING, "the run's content key: it hashes all that changes the numbers (not the suite)", _row("key")),
    S("suite", STRING, "the suite it is published under", _row("suite")),
    S("label", STRING, "the method entry's label in the suite (e.g. `kd+LR`)", _row("label")),
    S("method", STRING, "the method's registered name", _row("method")),
    S("method_params", STRING, "the method's resolved parameters, canonical JSON (sorted keys)",
      lambda r: _json(r.file.record.spec.method.params)),
    S("method_version", STRING, "the method's code version", lambda r: r.file.record.spec.method.version),
    S("teacher", STRING, "the teacher's architecture; null for a student trained without one", _row("teacher"), True),
    S("student", STRING, "the student's architecture", _row("student")),
    S("pair", STRING, "`teacher → student` (`- → student` without a teacher)", lambda r: r.file.record.pair),
    S("seed", INT, "the run's seed", _row("seed")),
    S("dataset", STRING, "the dataset's registered name", _row("dataset")),
    S("dataset_params", STRING, "the dataset's parameters, canonical JSON",
      lambda r: _json(r.file.record.spec.dataset.params)),
    S("noise_rate", FLOAT, "the fraction of training labels flipped on purpose (0: clean labels)",
      lambda r: n.rate if (n := _noise(r)) else 0.0),
    S("noise_kind", STRING, "how labels were flipped (`symmetric`, `pairflip`, `superclass`); null: clean",
      lambda r: n.kind if (n := _noise(r)) else None, True),
    S("noise_seed", INT, "the seed of the label flips; null: clean", lambda r: n.seed if (n := _noise(r)) else None,
      True),
    # how it was trained
    S("recipe", STRING, "the published recipe it followed (`reference/recipes.csv`); null: none", lambda r:
      r.row["recipe"] or None, True),
    S("recipe_epochs", INT, "training epochs", lambda r: r.file.record.spec.recipe.epochs),
    S("recipe_batch_size", INT, "the global batch size", lambda r: r.file.record.spec.recipe.batch_size),
    S("recipe_lr", FLOAT, "the initial learning rate (SGD)", lambda r: r.file.record.spec.recipe.lr),
    S("recipe_milestones", pa.list_(INT), "epochs after which the learning rate is multiplied by `recipe_lr_decay`",
      lambda r: list(r.file.record.spec.recipe.milestones)),
    S("recipe_lr_decay", FLOAT, "the learning rate's factor at each milestone",
      lambda r: r.file.record.spec.recipe.lr_decay),
    S("recipe_momentum", FLOAT, "SGD momentum", lambda r: r.file.record.spec.recipe.momentum),
    S("recipe_weight_decay", FLOAT, "SGD weight decay", lambda r: r.file.record.spec.recipe.weight_decay),
    S("recipe_nesterov", BOOL, "Nesterov momentum", lambda r: r.file.record.spec.recipe.nesterov),
    S("recipe_augment", BOOL, "training augmentation (crop and flip)", lambda r: r.file.record.spec.recipe.augment),
    S("recipe_drop_last", BOOL, "the last partial batch dropped", lambda r: r.file.record.spec.recipe.drop_last),
    S("recipe_teacher_cache_dtype", STRING, "the teacher-output cache's dtype (`float16` changes the numbers)",
      lambda r: r.file.record.spec.recipe.teacher_cache_dtype),
    # Data Selection and Label Revision
    S("ds", BOOL, "Data Selection on", _row("ds")),
    S("ds_estimator", STRING, "the data-value estimator ranking the samples; null: no DS, or a random subset",
      _row("ds_estimator"), True),
    S("ds_params", STRING, "the estimator's parameters, canonical JSON", lambda r: _json(r.row["ds_params"]), True),
    S("ds_fraction", FLOAT, "the fraction of the training set the teacher supervises (D_t)", _row("ds_fraction"), True),
    S("ds_order", STRING, "which samples go to the teacher: `highest`, `lowest` or `random`", _row("ds_order"), True),
    S("ds_mode", STRING, "`teacher` (the selected samples go to the teacher) or `drop` (they are removed from "
      "training)", _row("ds_mode"), True),
    S("ds_seed", INT, "the seed of a random subset", lambda r: s.seed if (s := r.file.record.spec.selection) else None,
      True),
    S("ds_teacher_samples", INT, "|D_t|: the training samples the teacher supervised",
      lambda r: s.teacher_samples if (s := r.file.record.selection) else None, True),
    S("lr", BOOL, "Label Revision on", _row("lr")),
    S("lr_name", STRING, "the revision strategy (`paper`, `swap`, `onehot`, `none`)", _row("lr_name"), True),
    S("lr_params", STRING, "the strategy's parameters (e.g. `eta`), canonical JSON",
      lambda r: _json(v.strategy.params) if (v := r.file.record.spec.revision) else None, True),
    S("lr_lambda1", FLOAT, "Eq. (11)'s λ1", _row("lr_lambda1"), True),
    S("lr_lambda2", FLOAT, "Eq. (11)'s λ2", _row("lr_lambda2"), True),
    S("lr_reduction", STRING, "Eq. (11)'s reduction (`mean`, `sum`)",
      lambda r: v.reduction if (v := r.file.record.spec.revision) else None, True),
    S("lr_temperature", FLOAT, "Eq. (11)'s temperature",
      lambda r: v.temperature if (v := r.file.record.spec.revision) else None, True),
    S("lr_in_method", BOOL, "the strategy revises the method's own teacher distribution instead of Eq. (11)",
      lambda r: v.in_method if (v := r.file.record.spec.revision) else None, True),
    S("logit_std", BOOL, "logit standardization (the method's `logit_std`)", _row("logit_std")),
    # what it measured
    S("teacher_key", STRING, "the teacher's content key", lambda r: r.file.record.teacher_key, True),
    S("teacher_top1", FLOAT, "the teacher's test top-1 (%)", _row("teacher_top1"), True),
    S("best_top1", FLOAT, "the best epoch's test top-1 (%)", _row("best_top1")),
    S("best_epoch", INT, "that epoch (1-indexed)", lambda r: r.file.record.best_epoch),
    S("last_top1", FLOAT, "the last epoch's test top-1 (%)", _row("last_top1")),
    S("last_top5", FLOAT, "the last epoch's test top-5 (%); null in records before schema 3", _row("last_top5"), True),
    S("test_top1_per_epoch", pa.list_(FLOAT), "test top-1 (%) after each epoch, in order",
      lambda r: list(r.file.test_top1_per_epoch)),
    S("wall_time_s", FLOAT, "training wall time (s)", _row("wall_time_s")),
    S("train_images_per_s", FLOAT, "training throughput (images/s)", _row("train_images_per_s")),
    S("evaluated_head", STRING, "the head the accuracies measure: `student`, or `method` (SimKD)",
      lambda r: r.file.record.evaluated_head),
    S("processes", INT, "DDP processes it trained on", lambda r: r.file.record.processes),
    S("compiled", BOOL, "trained through `torch.compile`", lambda r: r.file.record.compiled),
    S("teacher_cache_used", BOOL, "the teacher's logits came from the teacher-output cache; null: no teacher logits "
      "(or a record before schema 3)", lambda r: c.used if (c := r.file.record.teacher_cache) else None, True),
    # provenance
    S("git_revision", STRING, "the kdbench revision that trained it (`-dirty`: with uncommitted code)",
      lambda r: r.file.record.git_revision, True),
    S("finished_at", pa.timestamp("us", tz="UTC"), "when training finished",
      lambda r: round(r.file.record.finished_at * 1_000_000)),
    S("replaced", INT, "how many earlier published records of the same run it replaced (`publish --replace`)",
      lambda r: len(r.file.record.replaced)),
    S("schema_version", INT, "the record's schema version", lambda r: r.file.record.schema_version),
    S("host", STRING, "the machine's host name", lambda r: r.file.record.environment.host, True),
    S("device", STRING, "the device asked for (`cpu`, `cuda`, `cuda:1`)", lambda r: r.file.record.environment.device),
    S("device_name", STRING, "the GPU, else the CPU model", lambda r: r.file.record.environment.device_name, True),
    S("cpu_capability", STRING, "the CPU kernels torch picked (`AVX2`, `AVX512`, ...)",
      lambda r: r.file.record.environment.cpu_capability, True),
    S("cpu_count", INT, "the machine's CPU cores", lambda r: r.file.record.environment.cpu_count, True),
    S("torch_threads", INT, "torch's threads", lambda r: r.file.record.environment.torch_threads, True),
    S("gpu", STRING, "the CUDA device's name; null on a CPU", lambda r: r.file.record.environment.gpu, True),
    S("cuda_version", STRING, "torch's CUDA version; null on a CPU", lambda r: r.file.record.environment.cuda, True),
    S("torch_version", STRING, "torch's version", lambda r: r.file.record.environment.torch),
    S("python_version", STRING, "Python's version", lambda r: r.file.record.environment.python),
    S("kdbench_version", STRING, "kdbench's version", lambda r: r.file.record.environment.kdbench),
    S("platform", STRING, "the operating system, as Python's `platform` names it",
      lambda r: r.file.record.environment.platform),
    S("executor", STRING, "the executor plugin that ran it", lambda r: r.file.record.environment.executor, True),
    S("path", STRING, "the record file, relative to `results/`: `raw/<suite>/<key>/record.json`",
      lambda r: r.file.path),
)  # fmt: skip

SCHEMA = pa.schema([column.field() for column in COLUMNS])


def runs_table(files: Sequence[PublishedFile]) -> pa.Table:
    """One row per published record file, sorted by path; built column by column from one flattening per record."""
    runs = [Run(f, record_row(f.record)) for f in sorted(files, key=lambda f: f.path)]
    arrays = [pa.array([c.value(r) for r in runs], type=c.type) for c in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet (zstd), the same bytes for the same table."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_runs_table(results: Path, files: Sequence[PublishedFile]) -> Path:
    """Write ``results/runs.parquet`` (atomically) from the published files."""
    (path,) = write_outputs(results, {RUNS_PARQUET: parquet_bytes(runs_table(files))})
    return path


def schema_markdown() -> str:
    """The README's block: the columns as a Markdown table, between its markers."""
    lines = [START, "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type_name} | {c.meaning.replace('|', chr(92) + '|')} |" for c in COLUMNS]
    return "\n".join([*lines, END])


def print_schema() -> None:
    """``python -m kdbench.tables.runs_table``: the README's block, to paste between its markers."""
    sys.stdout.write(schema_markdown() + "\n")


if __name__ == "__main__":
    print_schema()
