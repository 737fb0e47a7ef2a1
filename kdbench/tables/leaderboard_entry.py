"""Leaderboard rows as suite entries: the YAML to paste into a file and hand to ``kdbench run`` to train a row's
runs again.

Why from the records' specs: a record holds the resolved spec of its run, so the entry is written back from
what ran, not from a suite file that may have changed since. Each entry is a complete suite with its method
entries: the dataset with its resolved parameters, the recipe and the teachers' recipe (fields that differ from
the suite defaults), the seeds, the pairs and the method with its resolved parameters, Data Selection and
Label Revision. A setting that followed the run's seed (an estimator left unseeded) is left out, so that it
follows the seed again. Runs that share everything but the pair and have the same seeds share one entry (one
line per pair), so the entry of a method over ten pairs is one entry, not ten; and methods that ran on the same
dataset, recipe, seeds and pairs share one suite (one method entry each), so a benchmark whose methods all ran
on its pairs is one suite, which is most of what the page's YAML would otherwise repeat. The runs an entry
expands to are exactly the published runs it was written from (a test checks the keys).

What an entry cannot pin: the code versions of the components (the installed plugins' versions are used) and
a teacher from a checkpoint, named by the path it had where it ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kdbench.contracts.names import DEFAULT_LAMBDA1, DEFAULT_LAMBDA2, default_label
from kdbench.contracts.recipe import TrainingRecipe
from kdbench.plan.recipe import Recipe
from kdbench.plan.spec import RunSpec, canonical_json, content_key

DEFAULTS = Recipe()
#: libyaml's safe dumper where PyYAML has it (the same text, ten times faster than the pure-Python one).
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class SuiteEntry:
    """One suite file's worth of runs: what ``kdbench run`` takes to train them again."""

    anchor: str  # a stable element id on the page, from the entry's content
    title: str  # "kd+DS · resnet20 → resnet8 · seeds 0, 1, 2"
    suite: dict[str, Any]  # the suite file as data
    keys: tuple[str, ...]  # the run keys it expands to (the published runs it was written from)

    @property
    def yaml(self) -> str:
        return yaml.dump(self.suite, Dumper=DUMPER, sort_keys=False, default_flow_style=None, width=100,
                         allow_unicode=True)


def _recipe_fields(recipe: TrainingRecipe, arch: str, base: Recipe = DEFAULTS) -> dict[str, Any]:
    """The fields of a suite recipe that resolve to ``recipe`` for ``arch``, less those equal to ``base``'s."""
    values = recipe.identity()
    resolved = base.resolved(arch).identity()
    lr = values.pop("lr")
    out = {k: v for k, v in values.items() if v != resolved.get(k)}
    if lr != resolved["lr"]:
        out["small_student_lr" if arch in base.small_students else "lr"] = lr
    return out


def _method(spec: RunSpec) -> dict[str, Any]:
    """The method entry of a run, as a suite writes it."""
    entry: dict[str, Any] = {"name": spec.method.name}
    mode = spec.selection.mode if spec.selection else None
    if spec.label != default_label(spec.method.name, spec.revision is not None, mode):
        entry["label"] = spec.label
    if spec.method.params:
        entry["params"] = spec.method.params
    selection = spec.selection
    if selection is not None:
        if selection.order == "random":  # a seeded random subset: the seed is the run's
            entry["selection"] = {"fraction": selection.fraction, "order": "random"}
        else:
            assert selection.estimator is not None, "a ranked selection has an estimator"
            params = dict(selection.estimator.params)
            if params.get("seed", None) == spec.seed:
                params.pop("seed")  # it followed the run's seed: left unset, it follows it again
            entry["selection"] = {"estimator": selection.estimator.name, "params": params,
                                  "fraction": selection.fraction, "order": selection.order}
    revision = spec.revision
    if revision is not None:
        settings: dict[str, Any] = {"name": revision.strategy.name, "params": revision.strategy.params}
        for name, value, default in (("lambda1", revision.lambda1, DEFAULT_LAMBDA1),
                                     ("lambda2", revision.lambda2, DEFAULT_LAMBDA2),
                                     ("reduction", revision.reduction, "mean"),
                                     ("temperature", revision.temperature, 1.0)):
            if value != default:
                settings[name] = value
        entry["revision"] = settings
    return entry


def _head(spec: RunSpec) -> dict[str, Any]:
    """Everything of a run's suite but its name, seeds and pair."""
    head: dict[str, Any] = {"dataset": {"name": spec.dataset.name, "params": spec.dataset.params}}
    noise = spec.dataset.label_noise
    if spec.dataset.noisy and noise is not None:
        head["label_noise"] = noise.identity()
    recipe = _recipe_fields(spec.recipe, spec.student)
    head["recipe"] = recipe
    teacher = spec.teacher
    if teacher is not None and teacher.recipe is not None:
        # the teachers' recipe is the suite's, with these overrides (teachers never use a float16 cache)
        base = Recipe.model_validate({**recipe, "teacher_cache_dtype": "float32"})
        overrides = _recipe_fields(teacher.recipe, teacher.arch, base)
        if overrides:
            head["teacher_recipe"] = overrides
        if teacher.seed:
            head["teacher_seed"] = teacher.seed
    if spec.plugin_files:
        head["plugins"] = list(spec.plugin_files)
    head["methods"] = [_method(spec)]
    return head


def _pair(spec: RunSpec) -> dict[str, Any]:
    teacher = spec.teacher
    if teacher is None:
        return {"student": spec.student}
    pair = {"teacher": teacher.arch, "student": spec.student}
    if teacher.checkpoint is not None:
        pair["checkpoint"] = teacher.checkpoint
    return pair


def _same_head(runs: Sequence[RunSpec]) -> bool:
    """Whether the runs differ in seed and pair only, as far as a suite entry tells: then one head serves all."""
    first = runs[0]
    return all(spec.recipe == first.recipe and spec.dataset == first.dataset and spec.teacher == first.teacher
               and spec.label == first.label and spec.plugin_files == first.plugin_files
               and spec.method == first.method and spec.revision == first.revision
               and _selection_entry(spec) == _selection_entry(first) for spec in runs[1:])


def _selection_entry(spec: RunSpec) -> object:
    return _method(spec).get("selection")


Keyed = tuple[str, RunSpec]  # a run's key (its record's) and its spec: the key is not computed again


def suite_entries(groups: Iterable[Sequence[Keyed]]) -> tuple[list[SuiteEntry], dict[str, str]]:
    """The entries that train the runs of ``groups`` again, in the order of their first run, and each run key's
    entry anchor. A group is any set of runs (a leaderboard row's, say); runs that differ only in seed and pair
    are found as such faster when they come as one group, and the entries are the same either way."""
    heads: dict[str, tuple[dict[str, Any], list[Keyed]]] = {}
    for group in groups:
        runs = list(group)
        if not runs:
            continue
        parts = [runs] if _same_head([spec for _, spec in runs]) else [[run] for run in runs]
        for part in parts:
            head = _head(part[0][1])
            heads.setdefault(canonical_json(head), (head, []))[1].extend(part)
    grouped: dict[str, list[SuiteEntry]] = {}
    for head, keyed in heads.values():
        by_pair: dict[tuple[str, str, str | None], tuple[dict[str, Any], list[Keyed]]] = {}
        for run in keyed:
            teacher, student = run[1].teacher, run[1].student
            where = (teacher.arch if teacher else "", student, teacher.checkpoint if teacher else None)
            by_pair.setdefault(where, (_pair(run[1]), []))[1].append(run)
        by_seeds: dict[tuple[int, ...], list[tuple[dict[str, Any], list[Keyed]]]] = {}
        for pair, pair_runs in by_pair.values():
            by_seeds.setdefault(tuple(sorted({spec.seed for _, spec in pair_runs})), []).append((pair, pair_runs))
        for seeds, pairs in by_seeds.items():
            entry = _entry(head, seeds, pairs)
            # methods on the same dataset, recipe, seeds and pairs share one suite: it expands to exactly their runs
            same = {k: v for k, v in entry.suite.items() if k not in ("methods", "pairs")}
            same["pairs"] = sorted(canonical_json(pair) for pair in entry.suite["pairs"])
            grouped.setdefault(canonical_json(same), []).append(entry)
    entries = [_merged(group) for group in grouped.values()]
    anchors: dict[str, str] = {}
    for entry in entries:
        anchors.update(dict.fromkeys(entry.keys, entry.anchor))
    return entries, anchors


def _merged(entries: list[SuiteEntry]) -> SuiteEntry:
    """One suite of the entries' methods (they share everything else, the pairs as a set)."""
    if len(entries) == 1:
        return entries[0]
    first = entries[0]
    suite = {**first.suite, "methods": [method for entry in entries for method in entry.suite["methods"]]}
    title = f"{len(suite['methods'])} methods · " + first.title.split(" · ", 1)[1]
    return SuiteEntry(f"yaml-{content_key(suite, 7)}", title, suite,
                      tuple(key for entry in entries for key in entry.keys))


def _entry(head: dict[str, Any], seeds: Sequence[int], pairs: list[tuple[dict[str, Any], list[Keyed]]]) -> SuiteEntry:
    first = pairs[0][1][0][1]
    suite = {"name": first.suite, **{k: v for k, v in head.items() if k != "methods"}, "seeds": list(seeds),
             "pairs": [pair for pair, _ in pairs], "methods": head["methods"]}
    keys = tuple(key for _, runs in pairs for key, _ in runs)
    names = (", ".join(runs[0][1].pair if pair.get("teacher") else pair["student"] for pair, runs in pairs)
             if len(pairs) <= 2 else f"{len(pairs)} {'pairs' if first.teacher else 'students'}")
    title = f"{first.label} · {names} · seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    return SuiteEntry(f"yaml-{content_key(suite, 7)}", title, suite, keys)
