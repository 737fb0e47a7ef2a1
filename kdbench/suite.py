"""Suite files: YAML → validated model → the cross product of run specs.

A suite names a dataset, a recipe, seeds, teacher/student pairs and the methods to cross over them.
Every error names the file, the line and the field, because a suite is written by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kdbench.errors import KdbenchError
from kdbench.methods import PairInfo
from kdbench.recipe import Recipe
from kdbench.registry import Registry
from kdbench.spec import ComponentRef, RunSpec, TeacherSpec


def _name_or_mapping(value: Any) -> Any:
    """Let ``- kd`` stand for ``- {name: kd}``."""
    return {"name": value} if isinstance(value, str) else value


class ComponentEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class MethodEntry(ComponentEntry):
    label: str | None = None

    def display(self) -> str:
        return self.label or self.name


class PairEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    student: str
    teacher: str | None = None
    checkpoint: str | None = None  # a RepDistiller/mdistiller checkpoint of the teacher


class TableOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Literal["best", "last"] = "best"


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str = ""
    dataset: ComponentEntry
    recipe: Recipe = Field(default_factory=Recipe)
    teacher_recipe: dict[str, Any] = Field(default_factory=dict)  # overrides of `recipe` for teachers
    teacher_seed: int = 0
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    plugins: list[str] = Field(default_factory=list)
    pairs: list[PairEntry] = Field(min_length=1)
    methods: list[MethodEntry] = Field(min_length=1)
    table: TableOptions = Field(default_factory=TableOptions)

    _as_mapping = field_validator("dataset", mode="before")(_name_or_mapping)

    @field_validator("methods", mode="before")
    @classmethod
    def _methods_as_mappings(cls, value: Any) -> Any:
        return [_name_or_mapping(v) for v in value] if isinstance(value, list) else value


def _node_line(root: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """1-based line of the YAML node at pydantic location ``loc`` (deepest existing node)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
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
        line = _node_line(self.nodes, loc)
        return f"{self.path}:{line}" if line else str(self.path)

    @property
    def plugin_files(self) -> tuple[str, ...]:
        return tuple(str((self.path.parent / p).resolve()) for p in self.config.plugins)


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise KdbenchError(f"suite file not found: {path}")
    text = path.read_text()
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
    try:
        config = SuiteFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _node_line(nodes, loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise KdbenchError(f"{path}:{line}: {field}: {err['msg']}{more}") from None
    return Suite(path=path, name=config.name or path.stem, config=config, nodes=nodes)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Plan:
    """What a suite asks for: teachers to have, then student runs (deduplicated, in file order)."""

    suite: Suite
    teachers: list[TeacherSpec]
    runs: list[RunSpec]


def expand(suite: Suite, registry: Registry) -> Plan:
    """Validate names and parameters against the registry and build the cross product."""
    cfg = suite.config
    dataset_comp = registry.get_at(suite.where("dataset", "name"), "dataset", cfg.dataset.name)
    dataset = ComponentRef(
        cfg.dataset.name,
        dataset_comp.resolve(cfg.dataset.params, suite.where("dataset", "params")),
        dataset_comp.version,
    )
    try:
        teacher_recipe = Recipe.model_validate({**cfg.recipe.model_dump(), **cfg.teacher_recipe})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = suite.where("teacher_recipe", *err["loc"])
        raise KdbenchError(f"{where}: teacher_recipe.{field}: {err['msg']}") from None

    teachers: dict[str, TeacherSpec] = {}
    pair_teachers: list[TeacherSpec | None] = []
    for i, pair in enumerate(cfg.pairs):
        registry.get_at(suite.where("pairs", i, "student"), "model", pair.student)
        if pair.teacher is None:
            if pair.checkpoint:
                raise KdbenchError(f"{suite.where('pairs', i)}: a checkpoint needs its teacher arch")
            pair_teachers.append(None)
            continue
        arch = registry.get_at(suite.where("pairs", i, "teacher"), "model", pair.teacher)
        if pair.checkpoint:
            ckpt = (suite.path.parent / pair.checkpoint).expanduser().resolve()
            if not ckpt.is_file():
                raise KdbenchError(f"{suite.where('pairs', i, 'checkpoint')}: checkpoint not found: {ckpt}")
            tspec = TeacherSpec(pair.teacher, arch.version, dataset, {}, 0, str(ckpt), file_sha256(ckpt))
        else:
            tspec = TeacherSpec(
                pair.teacher, arch.version, dataset, teacher_recipe.resolved(pair.teacher), cfg.teacher_seed
            )
            teachers.setdefault(tspec.key, tspec)
        pair_teachers.append(tspec)

    runs: dict[str, RunSpec] = {}
    for seed in cfg.seeds:
        for i, pair in enumerate(cfg.pairs):
            for j, entry in enumerate(cfg.methods):
                where = suite.where("methods", j)
                comp = registry.get_at(suite.where("methods", j, "name"), "method", entry.name)
                uses_teacher = getattr(comp.factory, "uses_teacher", True)
                if uses_teacher and pair_teachers[i] is None:
                    raise KdbenchError(f"{where}: method {entry.name!r} needs a teacher but pair {i} has none")
                info = PairInfo(pair.student, pair.teacher if uses_teacher else None)
                params = comp.resolve(entry.params, suite.where("methods", j, "params"))
                resolve = getattr(comp.factory, "resolve_params", None)
                params = resolve(params, info) if resolve else params
                student = registry.get("model", pair.student)
                spec = RunSpec(
                    suite=suite.name,
                    label=entry.display(),
                    method=ComponentRef(entry.name, params, comp.version),
                    student=pair.student,
                    student_version=student.version,
                    dataset=dataset,
                    recipe=cfg.recipe.resolved(pair.student),
                    seed=seed,
                    teacher=pair_teachers[i] if uses_teacher else None,
                    plugin_files=suite.plugin_files,
                    order=(i, j),
                )
                runs.setdefault(spec.key, spec)
    return Plan(suite=suite, teachers=list(teachers.values()), runs=list(runs.values()))

