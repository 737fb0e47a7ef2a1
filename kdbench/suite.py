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


class SelectionEntry(BaseModel):
    """Data Selection: score with ``estimator``, send ``fraction`` of the samples to the teacher (D_t)."""

    model_config = ConfigDict(extra="forbid")
    estimator: str = "influence"
    params: dict[str, Any] = Field(default_factory=dict)
    fraction: float = Field(0.8, gt=0, le=1)
    # highest / lowest scores go to D_t, or a random subset; default: the estimator's own direction
    order: Literal["highest", "lowest", "random"] | None = None


class RevisionEntry(BaseModel):
    """Label Revision with the paper's loss, Eq. (11)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "paper"
    params: dict[str, Any] = Field(default_factory=dict)
    lambda1: float = Field(1.0, ge=0)
    lambda2: float = Field(1.0, ge=0)
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

    _selection_shorthand = field_validator("selection", mode="before")(_shorthand("estimator"))
    _revision_shorthand = field_validator("revision", mode="before")(_shorthand("name"))

    def display(self) -> str:
        if self.label:
            return self.label
        extras = (["LR"] if self.revision else []) + (["DS"] if self.selection else [])
        return "+".join([self.name, *extras])


class PairEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    student: str
    teacher: str | None = None
    checkpoint: str | None = None  # a RepDistiller/mdistiller checkpoint of the teacher


TableLayout = Literal["method_pair", "selection", "ablation", "lambda", "eta", "vanilla", "oa_lda"]


class TableOptions(BaseModel):
    """How ``kdbench tables`` renders the suite: which paper layout (None: recognised from the records)."""

    model_config = ConfigDict(extra="forbid")
    metric: Literal["best", "last"] = "best"
    layout: TableLayout | None = None


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
                selection = _selection(suite, registry, j, entry, comp, dataset, seed)
                revision = _revision(suite, registry, j, entry, comp)
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
                    selection=selection,
                    revision=revision,
                    plugin_files=suite.plugin_files,
                    order=(i, j),
                )
                runs.setdefault(spec.key, spec)
    return Plan(suite=suite, teachers=list(teachers.values()), runs=list(runs.values()))



def resolve_estimator(comp: Any, params: dict[str, Any], seed: int, where: str) -> tuple[dict[str, Any], Any]:
    """An estimator's resolved parameters and a validated instance; a ``seed`` left at None takes ``seed``."""
    params = comp.resolve(params, where)
    if "seed" in params and params["seed"] is None:
        params["seed"] = seed  # a seeded estimator left unseeded follows the run's seed
    try:
        return params, comp.factory(**params)  # validates values before anything trains or scores
    except KdbenchError as exc:
        raise KdbenchError(f"{where}: {exc}") from None


def _selection(
    suite: Suite, registry: Registry, j: int, entry: MethodEntry, method: Any, dataset: ComponentRef, seed: int
) -> dict[str, Any] | None:
    """The resolved Data Selection of a method entry, checked against the rules of METHODS.md §7."""
    sel = entry.selection
    if sel is None:
        return None
    where = suite.where("methods", j, "selection")
    if not getattr(method.factory, "uses_teacher", True):
        raise KdbenchError(f"{where}: Data Selection splits samples between teacher and ground truth; "
                           f"method {entry.name!r} uses no teacher")
    if sel.order == "random":  # the scores play no part: no estimator, a seeded random subset
        return {"estimator": None, "fraction": sel.fraction, "order": "random", "seed": seed}
    comp = registry.get_at(suite.where("methods", j, "selection", "estimator"), "estimator", sel.estimator)
    params, instance = resolve_estimator(comp, sel.params, seed, where)
    if getattr(instance, "needs_validation", False) and not dataset.params.get("val_fraction"):
        raise KdbenchError(f"{where}: estimator {sel.estimator!r} needs a validation split: "
                           "set the dataset's params.val_fraction")
    order = sel.order or ("highest" if getattr(comp.factory, "higher_to_teacher", True) else "lowest")
    estimator = ComponentRef(sel.estimator, params, comp.version).identity()
    return {"estimator": estimator, "fraction": sel.fraction, "order": order}


def _revision(suite: Suite, registry: Registry, j: int, entry: MethodEntry, method: Any) -> dict[str, Any] | None:
    """The resolved Label Revision of a method entry, checked against the rules of METHODS.md §7."""
    rev = entry.revision
    if rev is None:
        return None
    where = suite.where("methods", j, "revision")
    if not getattr(method.factory, "uses_teacher", True):
        raise KdbenchError(f"{where}: Label Revision revises the teacher's predictions; "
                           f"method {entry.name!r} uses no teacher")
    if getattr(method.factory, "owns_logit_loss", False):
        raise KdbenchError(f"{where}: method {entry.name!r} has a logit loss of its own, which Label Revision "
                           "would replace; the paper combines such methods with Data Selection only (METHODS.md §7)")
    comp = registry.get_at(suite.where("methods", j, "revision", "name"), "revision", rev.name)
    params = comp.resolve(rev.params, where)
    try:
        comp.factory(**params)  # validates values (e.g. η < 1) before anything trains
    except KdbenchError as exc:
        raise KdbenchError(f"{where}: {exc}") from None
    return {**ComponentRef(rev.name, params, comp.version).identity(), "lambda1": rev.lambda1,
            "lambda2": rev.lambda2, "reduction": rev.reduction, "temperature": rev.temperature}
