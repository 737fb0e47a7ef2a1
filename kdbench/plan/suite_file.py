"""Suite files: YAML → a validated model, with a way back from any field to its line.

A suite names a dataset, a recipe, seeds, teacher/student pairs and the methods to cross over them.
Every error names the file, the line and the field, because a suite is written by hand. Turning the
validated file into runs is ``kdbench.plan.expand``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kdbench.contracts.names import (
    DEFAULT_ESTIMATOR,
    DEFAULT_FRACTION,
    DEFAULT_LAMBDA1,
    DEFAULT_LAMBDA2,
    DEFAULT_STRATEGY,
    default_label,
)
from kdbench.errors import KdbenchError
from kdbench.plan.recipe import Recipe
from kdbench.plan.tune_file import StudyEntry, studies_as_list

#: Fields that suites once had and that were removed, with what to do instead.
REMOVED_FIELDS: dict[tuple[str, ...], str] = {
    ("recipe", "eval_batch_size"): "it never changed a number; the evaluation batch size is an execution "
    "setting now: `kdbench run --eval-batch-size N`",
    ("teacher_recipe", "eval_batch_size"): "it never changed a number; the evaluation batch size is an "
    "execution setting now: `kdbench run --eval-batch-size N`",
}

#: A suite's name becomes a directory name under the run store.
_SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _name_or_mapping(value: Any) -> Any:
    """Let ``- kd`` stand for ``- {name: kd}``."""
    return {"name": value} if isinstance(value, str) else value


class ComponentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class SelectionEntry(BaseModel):
    """Data Selection: score with ``estimator``, send ``fraction`` of the samples to the teacher (D_t), or with
    ``mode: drop`` remove that fraction from training (a point of a removal curve)."""

    model_config = ConfigDict(extra="forbid")
    estimator: str = DEFAULT_ESTIMATOR
    params: dict[str, Any] = Field(default_factory=dict)
    fraction: float = Field(DEFAULT_FRACTION, gt=0, le=1)
    # highest / lowest scores go to D_t (or are removed), or a random subset; default: the estimator's own
    # direction (D_t), or the end where it expects mislabelled samples (drop)
    order: Literal["highest", "lowest", "random"] | None = None
    mode: Literal["teacher", "drop"] = "teacher"

    @model_validator(mode="after")
    def _something_left(self) -> SelectionEntry:
        if self.mode == "drop" and self.fraction >= 1:
            raise ValueError("mode drop removes the selected fraction from training: fraction must be below 1")
        return self


class RevisionEntry(BaseModel):
    """Label Revision with the paper's loss, Eq. (11)."""

    model_config = ConfigDict(extra="forbid")
    name: str = DEFAULT_STRATEGY
    params: dict[str, Any] = Field(default_factory=dict)
    lambda1: float = Field(DEFAULT_LAMBDA1, ge=0)
    lambda2: float = Field(DEFAULT_LAMBDA2, ge=0)
    reduction: Literal["mean", "sum"] = "mean"
    temperature: float = Field(1.0, gt=0)


def _shorthand(key: str) -> Any:
    """``selection: influence`` / ``revision: paper`` / ``revision: true`` stand for the full mapping."""

    def convert(value: Any) -> Any:
        if value is True:
            return {}
        return {key: value} if isinstance(value, str) else value

    return convert


class MethodEntry(ComponentEntry):
    label: str | None = None
    selection: SelectionEntry | None = None
    revision: RevisionEntry | None = None
    recipe: dict[str, Any] = Field(default_factory=dict)  # overrides of the suite's `recipe` for this entry's runs

    _selection_shorthand = field_validator("selection", mode="before")(_shorthand("estimator"))
    _revision_shorthand = field_validator("revision", mode="before")(_shorthand("name"))

    def display(self) -> str:
        if self.label:
            return self.label
        return default_label(self.name, self.revision is not None, self.selection.mode if self.selection else None)


class PairEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    student: str
    teacher: str | None = None
    checkpoint: str | None = None  # a RepDistiller/mdistiller checkpoint of the teacher
    weights: str | None = None  # the teacher's published weights by name (e.g. IMAGENET1K_V1), from $TORCH_HOME


#: The table layouts a suite may ask for; ``kdbench.tables`` renders each (and tests that it has all).
TableLayout = Literal["method_pair", "selection", "ablation", "lambda", "eta", "vanilla", "oa_lda", "imagenet", "noise",
                      "estimators", "teachers", "removal"]


class TableOptions(BaseModel):
    """How ``kdbench tables`` renders the suite: which paper layout (None: recognised from the records)."""

    model_config = ConfigDict(extra="forbid")
    metric: Literal["best", "last"] = "best"
    layout: TableLayout | None = None


class LabelNoiseEntry(BaseModel):
    """``label_noise: {rate: 0.2 | [0, 0.2, 0.4], kind: symmetric, seed: 0}``: a list of rates crosses every
    run of the suite over them (docs/methods.md §12)."""

    model_config = ConfigDict(extra="forbid")
    rate: float | list[float]
    kind: Literal["symmetric", "pairflip", "superclass"] = "symmetric"
    seed: int = 0

    @field_validator("rate")
    @classmethod
    def _rates_in_range(cls, value: float | list[float]) -> float | list[float]:
        rates = value if isinstance(value, list) else [value]
        if not rates or any(not 0 <= r < 1 for r in rates):
            raise ValueError(f"label_noise.rate must be in [0, 1), got {value}")
        return value

    @property
    def rates(self) -> list[float]:
        return self.rate if isinstance(self.rate, list) else [self.rate]


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    dataset: ComponentEntry
    label_noise: LabelNoiseEntry | None = None  # wrong training labels on purpose, at one rate or several
    recipe: Recipe = Field(default_factory=Recipe)
    teacher_recipe: dict[str, Any] = Field(default_factory=dict)  # overrides of `recipe` for teachers
    teacher_seed: int = 0
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    plugins: list[str] = Field(default_factory=list)
    pairs: list[PairEntry] = Field(min_length=1)
    methods: list[MethodEntry] = Field(min_length=1)
    table: TableOptions = Field(default_factory=TableOptions)
    executor: ComponentEntry | None = None  # how the runs are spread (``kdbench run --executor`` overrides it)
    tune: list[StudyEntry] = Field(default_factory=list)  # hyperparameter searches (``kdbench tune``)
    loggers: list[ComponentEntry] = Field(default_factory=list)  # experiment trackers (``kdbench run --log``)

    _as_mapping = field_validator("dataset", "executor", mode="before")(_name_or_mapping)
    _tune_as_list = field_validator("tune", mode="before")(studies_as_list)

    @field_validator("name")
    @classmethod
    def _name_is_a_directory_name(cls, value: str | None) -> str | None:
        if value is not None and not _SUITE_NAME.match(value):
            raise ValueError("a suite name may use letters, digits, '_', '.' and '-' only (it names a directory)")
        return value

    @field_validator("loggers", mode="before")
    @classmethod
    def _loggers_as_mappings(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str | dict) else value
        return [_name_or_mapping(v) for v in value] if isinstance(value, list) else value

    @field_validator("methods", mode="before")
    @classmethod
    def _methods_as_mappings(cls, value: Any) -> Any:
        return [_name_or_mapping(v) for v in value] if isinstance(value, list) else value


def _node_line(root: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """1-based line of the YAML node at pydantic location ``loc`` (deepest existing node)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode) and part == 0 and not isinstance(part, bool):
            continue  # a single mapping where a list is allowed (``tune:``) stands for item 0
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


@dataclass(frozen=True)
class Suite:
    """A validated suite file, with what is needed to point back into the file."""

    path: Path
    name: str
    config: SuiteFile
    nodes: yaml.Node | None

    def where(self, *loc: Any) -> str:
        """``file:line`` of the field at ``loc`` (or of its nearest existing parent)."""
        line = _node_line(self.nodes, loc)
        return f"{self.path}:{line}" if line else str(self.path)

    @property
    def plugin_files(self) -> tuple[str, ...]:
        return tuple(str((self.path.parent / p).resolve()) for p in self.config.plugins)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise KdbenchError(f"suite file not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KdbenchError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the suite file as UTF-8") from None


def _check_removed_fields(path: Path, data: dict[str, Any], nodes: yaml.Node | None) -> None:
    for loc, advice in REMOVED_FIELDS.items():
        parent = data.get(loc[0]) if len(loc) == 2 else data
        if isinstance(parent, dict) and loc[-1] in parent:
            raise KdbenchError(f"{path}:{_node_line(nodes, loc)}: {'.'.join(loc)} was removed: {advice}")


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    text = _read_text(path)
    try:
        nodes = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KdbenchError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise KdbenchError(f"{path}:1: a suite file must be a mapping with dataset, pairs and methods")
    _check_removed_fields(path, data, nodes)
    try:
        config = SuiteFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _node_line(nodes, loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise KdbenchError(f"{path}:{line}: {field}: {err['msg']}{more}") from None
    return Suite(path=path, name=config.name or _default_name(path), config=config, nodes=nodes)


def _default_name(path: Path) -> str:
    """The file's stem, made a safe directory name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem).lstrip(".") or "suite"
