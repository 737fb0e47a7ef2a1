"""``kdbench score``: score a suite's training set with data-value estimators on a pair's teacher.

``kdbench.tables`` is imported where a report is written (pandas, matplotlib: ``kdbench.cli.results``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from rich.console import Console

from kdbench.cli.common import (
    DataRoot,
    Device,
    Download,
    EvalBatchSize,
    LoaderWorkers,
    Nproc,
    Plugins,
    Quiet,
    Runs,
    Threads,
    argument,
    console,
    option,
    parse_params,
    plan_suite,
    print_table,
    run_options,
    runs_root,
)
from kdbench.errors import KdbenchError
from kdbench.plan import ComponentRef, TeacherSpec, resolve_estimator
from kdbench.registry import Registry
from kdbench.run import RunOptions, Worker
from kdbench.run.scoring import detection_of
from kdbench.store import DetectionRecord, StoredScores, write_outputs


def score(
    suite: Annotated[str, argument(metavar="SUITE", help="suite YAML file: its dataset and the teacher of --pair")],
    pair: Annotated[int, option("--pair", metavar="I",
                                help="index of the pair whose teacher scores (default 0)")] = 0,
    estimator: Annotated[list[str] | None, option(
        "--estimator", metavar="NAME", help="estimator (repeatable; 'all': every one the dataset can feed; default "
        "influence); on a dataset with label noise, also how well each one flags the flipped labels")] = None,
    param: Annotated[list[str] | None, option("--param", metavar="KEY=VALUE", help="estimator parameter (repeatable), "
                                              "e.g. --param solver=ekfac")] = None,
    out: Annotated[str | None, option("--out", metavar="DIR", help="default: <runs>/scores/<suite>/")] = None,
    plugin: Plugins = None,
    runs: Runs = None,
    data_root: DataRoot = RunOptions.data_root,
    download: Download = RunOptions.download,
    device: Device = RunOptions.device,
    eval_batch_size: EvalBatchSize = RunOptions.eval_batch_size,
    threads: Threads = RunOptions.threads,
    loader_workers: LoaderWorkers = RunOptions.loader_workers,
    nproc: Nproc = RunOptions.nproc,
    quiet: Quiet = RunOptions.quiet,
) -> int:
    """score a suite's training set with a data-value estimator

    Scores the training set with one or more data-value estimators on a pair's teacher. It writes per-sample
    scores (`index,label,score,teacher_correct`) as CSV and a histogram PNG under `runs/scores/`, and prints how
    long scoring took. On a suite with `label_noise`, it also writes and prints how well each estimator flags
    the flipped labels (AUROC, precision@k, seconds).
    """
    printer = console()
    plan, registry = plan_suite(suite, plugin, download)
    teachers = {s.order[0]: s.teacher for s in plan.runs if s.teacher is not None}
    if pair not in teachers:
        raise KdbenchError(f"{plan.suite.path}: pair {pair} has no teacher to score with")
    tspec = teachers[pair]
    names = _estimator_names(estimator or ["influence"], registry, tspec.dataset.params)
    if len(names) > 1 and param:
        raise KdbenchError("--param goes with one --estimator; give each estimator its own kdbench score call")
    given = parse_params(param)
    worker = Worker(run_options(runs=runs, data_root=data_root, download=download, device=device,
                                eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers,
                                nproc=nproc, quiet=quiet, plugin=plugin), plan.suite.plugin_files)
    folder = Path(out) if out else runs_root(runs) / "scores" / plan.suite.name
    flipped = worker.components.dataset(tspec.dataset).train_flipped
    detections = []
    for name in names:
        stored = _score_one(printer, worker, registry, plan.suite.name, tspec, name, given, folder)
        if flipped is not None:
            detections.append(detection_of(registry.get("estimator", name), stored, flipped))
    if detections:
        _write_detection(printer, detections, tspec, plan.suite.name, folder)
    return 0


def _estimator_names(given: list[str], registry: Registry, dataset_params: dict[str, Any]) -> list[str]:
    """The estimators asked for; ``all`` is every registered one that this dataset can feed (those that need
    a validation split only with a ``val_fraction``)."""
    if given != ["all"]:
        for name in given:
            registry.get("estimator", name)
        return list(dict.fromkeys(given))
    has_val = bool(dataset_params.get("val_fraction"))
    return [name for name in registry.names("estimator")
            if has_val or not registry.get("estimator", name).factory.needs_validation]


def _score_one(out: Console, worker: Worker, registry: Registry, suite: str, tspec: TeacherSpec, name: str,
               given: dict[str, object], folder: Path) -> StoredScores:
    """Score with one estimator (from the cache when it has them), write its CSV and histogram, say so."""
    from kdbench.tables.score_report import write_score_report  # pandas, matplotlib: module docstring

    comp = registry.get("estimator", name)
    params, _ = resolve_estimator(comp, given, 0, f"--estimator {name} --param")
    start = time.perf_counter()
    stored = worker.scorer.scores(tspec, ComponentRef(name, params, comp.version))
    elapsed = time.perf_counter() - start
    stem = f"{name}-{tspec.arch}-{stored.key}"
    settings = ", ".join(f"{k}={v}" for k, v in {**params, **stored.info}.items())
    caption = f"{suite}: {stored.values.shape[0]} training samples scored on teacher {tspec.arch}; {settings}"
    paths = write_score_report(stored, folder, stem, f"{name} scores, {tspec.arch}", caption)
    direction = "higher" if stored.higher_to_teacher else "lower"
    out.print(
        f"{name} scored {stored.values.shape[0]} samples in {stored.seconds:.2f} s "
        f"(this call {elapsed:.2f} s, teacher and features included); {direction} scores go to the teacher"
    )
    if stored.info:
        out.print(f"settings used: {stored.info}", markup=False, highlight=False)
    out.print("wrote " + ", ".join(str(p) for p in paths))
    return stored


def _write_detection(out: Console, detections: list[DetectionRecord], tspec: TeacherSpec, suite: str,
                     folder: Path) -> None:
    """The noise-detection table of the estimators scored here (Markdown and CSV beside the scores)."""
    from kdbench.tables.detection import detection_table  # pandas: module docstring

    noise = tspec.dataset.label_noise
    assert noise is not None  # only a dataset with label noise has flipped labels to detect
    caption = (f"{suite}: flagging the {noise.kind} label noise (rate {noise.rate}, seed {noise.seed}) of the "
               f"training set with each estimator's scores on teacher {tspec.arch}")
    table = detection_table(detections, caption)
    stem = f"detection-{tspec.arch}-{tspec.key}"
    paths = write_outputs(folder, {f"{stem}.md": table.markdown.encode(),
                                   f"{stem}.csv": table.tidy.to_csv(index=False).encode()})
    print_table(out, table.markdown, paths)
