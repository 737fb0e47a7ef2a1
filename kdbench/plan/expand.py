"""A validated suite → its plan: the teachers it needs and the cross product of typed run specs.

Every name and parameter is checked against the registry here, before anything trains, and the rules
of docs/methods.md §7 (which methods Data Selection and Label Revision combine with) are enforced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from kdbench.contracts.estimators import DataValueEstimator
from kdbench.contracts.methods import DistillationMethod, PairInfo
from kdbench.errors import KdbenchError
from kdbench.plan.recipe import Recipe
from kdbench.plan.spec import (
    RANDOM_SELECTION_STREAM,
    ComponentRef,
    DatasetRef,
    LabelNoise,
    RevisionSpec,
    RunSpec,
    SelectionOrder,
    SelectionSpec,
    TeacherSpec,
)
from kdbench.plan.suite_file import MethodEntry, Suite
from kdbench.plan.weights import missing_file_message, weights_location
from kdbench.registry import Component, Registry


def file_sha256(path: Path) -> str:
    """A checkpoint's identity: its bytes, not its path."""
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


T = TypeVar("T")


def construct(comp: Component[Callable[..., T]], params: dict[str, Any], where: str) -> T:
    """Build a component from resolved parameters, so that a value it rejects fails before any run."""
    try:
        return comp.factory(**params)
    except KdbenchError as exc:
        raise KdbenchError(f"{where}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise KdbenchError(f"{where}: {comp.kind} {comp.name!r} rejected its parameters: {exc}") from None


def resolve_estimator(
    comp: Component[type[DataValueEstimator]],
    params: dict[str, Any],
    seed: int,
    where: str | Callable[[str | None], str],
) -> tuple[dict[str, Any], DataValueEstimator]:
    """An estimator's resolved, checked parameters and its instance; a ``seed`` left at None takes ``seed``."""
    params = comp.resolve(params, where)
    if "seed" in params and params["seed"] is None:
        params["seed"] = seed  # a seeded estimator left unseeded follows the run's seed
    return params, construct(comp, params, where(None) if callable(where) else where)


def expand(suite: Suite, registry: Registry) -> Plan:
    """Validate names and parameters against the registry and build the cross product."""
    cfg = suite.config
    dataset_comp = registry.get_at(suite.where("dataset", "name"), "dataset", cfg.dataset.name)
    params = dataset_comp.resolve(cfg.dataset.params, lambda k: suite.where("dataset", "params", k))
    noise = cfg.label_noise
    datasets = [
        DatasetRef(
            cfg.dataset.name,
            params,
            dataset_comp.version,
            LabelNoise(rate, noise.kind, noise.seed) if noise and rate > 0 else None,
        )
        for rate in (noise.rates if noise else [0.0])
    ]
    teachers_recipe = teacher_recipe(suite)
    teachers: dict[str, TeacherSpec] = {}
    runs: dict[str, RunSpec] = {}
    for dataset in datasets:  # one per label-noise rate (one without noise)
        _expand_dataset(suite, registry, dataset, teachers_recipe, teachers, runs)
    return Plan(suite=suite, teachers=list(teachers.values()), runs=_with_teacher_passes(list(runs.values()), registry))


def _expand_dataset(
    suite: Suite,
    registry: Registry,
    dataset: DatasetRef,
    teachers_recipe: Recipe,
    teachers: dict[str, TeacherSpec],
    runs: dict[str, RunSpec],
) -> None:
    """The teachers and runs of every pair × method × seed on one dataset (one label-noise rate)."""
    cfg = suite.config
    pair_teachers: list[TeacherSpec | None] = []
    for i, pair in enumerate(cfg.pairs):
        registry.get_at(suite.where("pairs", i, "student"), "model", pair.student)
        if pair.teacher is None:
            if pair.checkpoint or pair.weights:
                raise KdbenchError(f"{suite.where('pairs', i)}: a checkpoint or weights need their teacher arch")
            pair_teachers.append(None)
            continue
        arch = registry.get_at(suite.where("pairs", i, "teacher"), "model", pair.teacher)
        if pair.weights:
            where = suite.where("pairs", i, "weights")
            if pair.checkpoint:
                raise KdbenchError(f"{where}: give the teacher a checkpoint or published weights, not both")
            path, url = weights_location(arch, pair.weights, where)
            if not path.is_file():
                raise KdbenchError(missing_file_message(where, pair.teacher, pair.weights, path, url))
            tspec = TeacherSpec(pair.teacher, arch.version, dataset, None, 0, str(path), file_sha256(path))
        elif pair.checkpoint:
            ckpt = (suite.path.parent / pair.checkpoint).expanduser().resolve()
            if not ckpt.is_file():
                raise KdbenchError(f"{suite.where('pairs', i, 'checkpoint')}: checkpoint not found: {ckpt}")
            tspec = TeacherSpec(pair.teacher, arch.version, dataset, None, 0, str(ckpt), file_sha256(ckpt))
        else:
            tspec = TeacherSpec(
                pair.teacher, arch.version, dataset, teachers_recipe.resolved(pair.teacher), cfg.teacher_seed
            )
            teachers.setdefault(tspec.key, tspec)
        pair_teachers.append(tspec)

    entry_recipes = [method_recipe(suite, j) for j in range(len(cfg.methods))]
    for seed in cfg.seeds:
        for i, pair in enumerate(cfg.pairs):
            for j, entry in enumerate(cfg.methods):
                comp = registry.get_at(suite.where("methods", j, "name"), "method", entry.name)
                uses_teacher = comp.factory.uses_teacher
                if uses_teacher and pair_teachers[i] is None:
                    raise KdbenchError(
                        f"{suite.where('methods', j)}: method {entry.name!r} needs a teacher but pair {i} has none"
                    )
                info = PairInfo(pair.student, pair.teacher if uses_teacher else None)
                params = _method_params(suite, j, entry, comp, info)
                spec = RunSpec(
                    suite=suite.name,
                    label=entry.display(),
                    method=ComponentRef(entry.name, params, comp.version),
                    student=pair.student,
                    student_version=registry.get("model", pair.student).version,
                    dataset=dataset,
                    recipe=entry_recipes[j].resolved(pair.student),
                    seed=seed,
                    teacher=pair_teachers[i] if uses_teacher else None,
                    selection=_selection(suite, registry, j, entry, comp, dataset, seed),
                    revision=_revision(suite, registry, j, entry, comp),
                    plugin_files=suite.plugin_files,
                    order=(i, j),
                )
                runs.setdefault(spec.key, spec)


def _with_teacher_passes(runs: list[RunSpec], registry: Registry) -> list[RunSpec]:
    """Tell every run that reads only its teacher's logits how many epochs of the plan would run that
    teacher live on the same (augmented) training set: what the teacher-output cache would save."""

    def shared_pass(spec: RunSpec) -> tuple[str, bool] | None:
        """The teacher pass a run that reads only its teacher's logits shares; None for any other run."""
        if spec.teacher is None or registry.get("method", spec.method.name).factory.needs_features:
            return None
        return (spec.teacher.key, spec.recipe.augment)

    passes: dict[tuple[str, bool], int] = {}
    for spec in runs:
        if (share := shared_pass(spec)) is not None:
            passes[share] = passes.get(share, 0) + spec.recipe.epochs
    return [
        spec if (share := shared_pass(spec)) is None else replace(spec, teacher_passes=passes[share]) for spec in runs
    ]


def teacher_recipe(suite: Suite) -> Recipe:
    """The recipe harness-trained teachers use: the suite's, with its ``teacher_recipe`` overrides."""
    # A teacher trains from labels alone: no teacher outputs to cache, so its key carries no cache dtype.
    return _recipe_with(suite, {**suite.config.teacher_recipe, "teacher_cache_dtype": "float32"}, ("teacher_recipe",),
                        "teacher_recipe")


def method_recipe(suite: Suite, j: int) -> Recipe:
    """The recipe of method entry ``j``'s runs: the suite's, with the entry's own ``recipe:`` overrides (a method
    published with its own recipe, such as MLKD's, runs with it beside methods on the suite's)."""
    overrides = suite.config.methods[j].recipe
    return suite.config.recipe if not overrides else _recipe_with(suite, overrides, ("methods", j, "recipe"),
                                                                     "recipe")


def _recipe_with(suite: Suite, overrides: dict[str, Any], at: tuple[str | int, ...], name: str) -> Recipe:
    """The suite's recipe with ``overrides``, validated; an error names the line of the overriding field."""
    try:
        return Recipe.model_validate({**suite.config.recipe.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = suite.where(*at, *err["loc"])
        raise KdbenchError(f"{where}: {name}.{field}: {err['msg']}") from None


def _method_params(
    suite: Suite, j: int, entry: MethodEntry, comp: Component[type[DistillationMethod]], pair: PairInfo
) -> dict[str, Any]:
    """Resolved, checked parameters of a method entry for one pair (pair-dependent defaults filled in)."""
    params = comp.resolve(entry.params, lambda k: suite.where("methods", j, "params", k))
    params = comp.factory.resolve_params(params, pair)
    construct(comp, params, suite.where("methods", j, "params"))
    return params


def _selection(
    suite: Suite,
    registry: Registry,
    j: int,
    entry: MethodEntry,
    method: Component[type[DistillationMethod]],
    dataset: ComponentRef,
    seed: int,
) -> SelectionSpec | None:
    """The resolved Data Selection of a method entry, checked against the rules of docs/methods.md §7."""
    sel = entry.selection
    if sel is None:
        return None
    where = suite.where("methods", j, "selection")
    if not method.factory.uses_teacher:  # the scores, and D_t, are the pair's teacher's
        raise KdbenchError(
            f"{where}: Data Selection splits samples between teacher and ground truth; "
            f"method {entry.name!r} uses no teacher"
        )
    if sel.order == "random":  # the scores play no part: no estimator, a seeded random subset
        return SelectionSpec(fraction=sel.fraction, order="random", seed=seed, mode=sel.mode,
                             stream=RANDOM_SELECTION_STREAM)
    comp = registry.get_at(suite.where("methods", j, "selection", "estimator"), "estimator", sel.estimator)

    def at(key: str | None) -> str:
        return suite.where("methods", j, "selection", "params", key) if key else where

    params, instance = resolve_estimator(comp, sel.params, seed, at)
    if instance.needs_validation and not dataset.params.get("val_fraction"):
        raise KdbenchError(
            f"{where}: estimator {sel.estimator!r} needs a validation split: set the dataset's params.val_fraction"
        )
    # by default D_t takes the estimator's own end; mode drop removes the end where it expects mislabelled samples
    high_end = comp.factory.suspect_when == "high" if sel.mode == "drop" else comp.factory.higher_to_teacher
    default: SelectionOrder = "highest" if high_end else "lowest"
    estimator = ComponentRef(sel.estimator, params, comp.version)
    return SelectionSpec(fraction=sel.fraction, order=sel.order or default, estimator=estimator, mode=sel.mode)


def _revision(
    suite: Suite, registry: Registry, j: int, entry: MethodEntry, method: Component[type[DistillationMethod]]
) -> RevisionSpec | None:
    """The resolved Label Revision of a method entry, checked against the rules of docs/methods.md §7."""
    rev = entry.revision
    if rev is None:
        return None
    where = suite.where("methods", j, "revision")
    if not method.factory.uses_teacher:
        raise KdbenchError(
            f"{where}: Label Revision revises the teacher's predictions; method {entry.name!r} uses no teacher"
        )
    if not method.factory.accepts_label_revision:
        raise KdbenchError(
            f"{where}: Label Revision revises the teacher's predictions that supervise the student's output; "
            f"method {entry.name!r} has no such supervision (docs/methods.md §7)"
        )
    comp = registry.get_at(suite.where("methods", j, "revision", "name"), "revision", rev.name)
    params = comp.resolve(rev.params, lambda k: suite.where("methods", j, "revision", "params", k))
    construct(comp, params, where)
    return RevisionSpec(
        ComponentRef(rev.name, params, comp.version),
        rev.lambda1,
        rev.lambda2,
        rev.reduction,
        rev.temperature,
        in_method=bool(method.factory.owns_logit_loss),
    )
