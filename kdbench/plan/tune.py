"""A suite's studies resolved against the registry, and a trial's values turned into an ordinary run.

A trial is a ``RunSpec`` like any other: the study's method entry with the trial's values written into
it, on one pair and one seed, filed in the run store under ``<suite>.tune``. Its content key is what
lets a trial reuse a run trained before (by this study, another study or a suite). The objective is the
validation top-1 on the split held out of the training set (``val_fraction``), never the test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from kdbench.errors import KdbenchError, did_you_mean
from kdbench.plan.expand import Plan, expand, method_recipe, teacher_recipe
from kdbench.plan.recipe import Recipe
from kdbench.plan.spec import RunSpec
from kdbench.plan.suite_file import MethodEntry, Suite
from kdbench.plan.tune_file import Distribution, StudyEntry
from kdbench.registry import Registry

REVISION_FIELDS = ("lambda1", "lambda2", "temperature")
SELECTION_FIELDS = ("fraction",)


@dataclass(frozen=True)
class Study:
    """One ``tune:`` entry of a suite, checked: which method entry, pair and seed its trials train."""

    suite: Suite
    index: int  # position in the suite's ``tune:`` list
    entry: StudyEntry
    method_index: int
    label: str  # the method entry's label, as tables show it
    seed: int
    integer_paths: frozenset[str] = frozenset()  # searched over integers: the values they set are ints

    @property
    def name(self) -> str:
        return self.entry.name or f"{self.suite.name}.{self.label}"

    @property
    def trial_suite_name(self) -> str:
        return f"{self.suite.name}.tune"

    def where(self, *loc: Any) -> str:
        return self.suite.where("tune", self.index, *loc)


def studies(suite: Suite, registry: Registry) -> list[Study]:
    """Every study of the suite, checked before anything trains (one line, naming file, line and field)."""
    cfg = suite.config
    if not cfg.tune:
        raise KdbenchError(f"{suite.path}: the suite has no `tune:` block to search with")
    val_fraction = cfg.dataset.params.get("val_fraction") or 0
    if not val_fraction:
        raise KdbenchError(f"{suite.where('dataset')}: tuning needs a validation split, its objective is validation "
                           "top-1 and never test accuracy: set the dataset's params.val_fraction")
    out = []
    for i, entry in enumerate(cfg.tune):
        labels = [m.display() for m in cfg.methods]
        if isinstance(entry.method, int):
            if not 0 <= entry.method < len(cfg.methods):
                raise KdbenchError(f"{suite.where('tune', i, 'method')}: tune.method: no method entry {entry.method} "
                                   f"(the suite has {len(cfg.methods)})")
            j = entry.method
        elif entry.method in labels:
            j = labels.index(entry.method)
        else:
            raise KdbenchError(f"{suite.where('tune', i, 'method')}: tune.method: no method entry labelled "
                               f"{entry.method!r}{did_you_mean(entry.method, labels)}")
        if entry.pair >= len(cfg.pairs):
            raise KdbenchError(f"{suite.where('tune', i, 'pair')}: tune.pair: no pair {entry.pair} "
                               f"(the suite has {len(cfg.pairs)})")
        study = Study(suite, i, entry, j, labels[j], entry.seed if entry.seed is not None else cfg.seeds[0])
        integers = frozenset(path for path in entry.space if _check_path(study, registry, path) is int)
        study = replace(study, integer_paths=integers)
        for corner in ("low", "high"):  # the corners of the space must make valid runs
            values = {path: _corner(dist, corner) for path, dist in entry.space.items()}
            try:
                trial_plan(study, registry, values)
            except KdbenchError as exc:
                raise KdbenchError(f"{study.where('space')}: tune.space: the {corner} corner {values} makes no valid "
                                   f"run: {str(exc).split(': ', 1)[-1]}") from None
        out.append(study)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise KdbenchError(f"{suite.where('tune')}: two studies share a name; give each a `name:`")
    return out


def _corner(dist: Distribution, which: str) -> Any:
    if dist.choices is not None:
        return dist.choices[0] if which == "low" else dist.choices[-1]
    return dist.low if which == "low" else dist.high


def _check_path(study: Study, registry: Registry, path: str) -> Any:
    """A searched path must name a value the method entry really has; returns that value's type hint."""
    where = study.where("space", path)
    entry = study.suite.config.methods[study.method_index]
    root, *rest = path.split(".")

    def unknown(known: list[str], what: str) -> KdbenchError:
        name = ".".join(rest)
        return KdbenchError(f"{where}: tune.space: {what} has no {name!r}{did_you_mean(name, known)}")

    if root == "params":
        comp = registry.get("method", entry.name)
        known = list(comp.parameters())
        if len(rest) != 1 or rest[0] not in known:
            raise unknown(known, f"method {entry.name!r}")
        return comp.hints().get(rest[0])
    elif root in ("revision", "selection"):
        block = getattr(entry, root)
        if block is None:
            raise KdbenchError(f"{where}: tune.space: method entry {study.label!r} has no {root} block to search")
        fields = REVISION_FIELDS if root == "revision" else SELECTION_FIELDS
        if rest[0] == "params":
            kind, name = ("revision", block.name) if root == "revision" else ("estimator", block.estimator)
            searched = registry.get(kind, name)
            known = list(searched.parameters())
            if len(rest) != 2 or rest[1] not in known:
                raise unknown([f"params.{k}" for k in known], f"{kind} {name!r}")
            return searched.hints().get(rest[1])
        if len(rest) != 1 or rest[0] not in fields:
            raise unknown([*fields, "params.<name>"], f"the {root} block")
        return float
    known = list(Recipe.model_fields)  # recipe
    if len(rest) != 1 or rest[0] not in known:
        raise unknown(known, "the recipe")
    return Recipe.model_fields[rest[0]].annotation


def apply_values(entry: MethodEntry, recipe: Recipe, values: dict[str, Any]) -> tuple[MethodEntry, Recipe]:
    """The method entry and recipe with a trial's values written in at their paths."""
    data, recipe_data = entry.model_dump(), recipe.model_dump()
    for path, value in values.items():
        root, *rest = path.split(".")
        node = recipe_data if root == "recipe" else data[root]
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value
    try:
        return MethodEntry.model_validate(data), Recipe.model_validate(recipe_data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise KdbenchError(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def trial_plan(study: Study, registry: Registry, values: dict[str, Any], seeds: list[int] | None = None,
               label: str | None = None, suite_name: str | None = None) -> Plan:
    """The plan of one trial (or of a tuned entry's final runs over ``seeds``): the study's method entry with
    ``values``, on the study's pair. The teachers keep the suite's own recipe, whatever the trial changes."""
    suite, cfg = study.suite, study.suite.config
    # the entry's own recipe overrides are the base a trial's recipe values apply to
    entry, recipe = apply_values(cfg.methods[study.method_index], method_recipe(suite, study.method_index), values)
    entry = entry.model_copy(update={"label": label or study.label, "recipe": {}})
    config = cfg.model_copy(update={
        "methods": [entry], "pairs": [cfg.pairs[study.entry.pair]], "seeds": seeds or [study.seed],
        "recipe": recipe, "teacher_recipe": teacher_recipe(suite).model_dump(), "tune": [],
    })
    trial_suite = Suite(path=suite.path, name=suite_name or study.trial_suite_name, config=config, nodes=None)
    return expand(trial_suite, registry)


def trial_spec(study: Study, registry: Registry, values: dict[str, Any]) -> RunSpec:
    (spec,) = trial_plan(study, registry, values).runs
    return spec


def final_plan(study: Study, registry: Registry, best: dict[str, Any]) -> Plan:
    """The untuned entry and the best values, with every seed of the suite, as one plan (``<suite>.final``):
    their test top-1 side by side. Runs with the same key (the best values are the untuned ones) run once."""
    seeds, name = list(study.suite.config.seeds), f"{study.suite.name}.final"
    untuned = trial_plan(study, registry, {}, seeds, study.label, name)
    tuned = trial_plan(study, registry, best, seeds, f"{study.label} (tuned)", name)
    teachers = {t.key: t for t in untuned.teachers + tuned.teachers}
    runs = {s.key: s for s in untuned.runs + tuned.runs}
    return Plan(suite=untuned.suite, teachers=list(teachers.values()), runs=list(runs.values()))


SIGNIFICANT_DIGITS = 4


def significant(value: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """A float to ``digits`` significant digits (0.123456 -> 0.1235, 12345.6 -> 12350.0); anything else as is."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    return value


def rounded(study: Study, values: dict[str, Any]) -> dict[str, Any]:
    """A trial's values as a person reads them: ranges over floats to 4 significant digits, ints and the
    values of a ``choices`` list exactly as they are."""
    space = study.entry.space
    return {path: value if path in space and space[path].choices is not None else significant(value)
            for path, value in values.items()}


def tuned_entry(study: Study, values: dict[str, Any]) -> dict[str, Any]:
    """The best values as a ready-to-paste suite fragment: a method entry (and recipe fields, if searched),
    floats searched over a range to 4 significant digits."""
    cfg = study.suite.config
    values = rounded(study, values)
    entry, recipe = apply_values(cfg.methods[study.method_index], cfg.recipe, values)
    method = entry.model_dump(exclude_defaults=True)
    method["label"] = f"{study.label} (tuned)"
    fragment: dict[str, Any] = {"methods": [method]}
    recipe_values = {p.split(".", 1)[1]: v for p, v in values.items() if p.startswith("recipe.")}
    if recipe_values:
        fragment["recipe"] = recipe_values
    return fragment
