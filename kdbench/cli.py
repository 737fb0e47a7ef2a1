"""Command line: ``kdbench run | list | tables | score | teacher | publish | leaderboard``.

Every error a user can cause arrives here as a ``KdbenchError``: one line on stderr, exit code 2.
Warnings (a corrupt record skipped, a degenerate estimator) are one line each too.

Where things go: ``kdbench run``, ``tables`` and ``score`` write to the run store (``--runs``, default
``$KDBENCH_RUNS`` or ``./runs``); only ``kdbench publish`` and ``kdbench leaderboard`` write to the
published results (``--results``, default ``./results``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import get_args

from rich.console import Console
from rich.table import Table as RichTable

from kdbench.contracts.hookspecs import KINDS
from kdbench.errors import KdbenchError
from kdbench.plan.suite_file import TableLayout
from kdbench.registry import REQUIRED
from kdbench.store.home import default_runs_root

LAYOUT_NAMES = list(get_args(TableLayout))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="FILE",
                   help="load a single-file plugin (repeatable)")


def _add_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", default=None, metavar="DIR",
                   help="the run store of your own runs (default: $KDBENCH_RUNS, else ./runs)")


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results", metavar="DIR",
                   help="the published results (default: ./results)")


def _add_execution(p: argparse.ArgumentParser) -> None:
    _add_runs(p)
    p.add_argument("--data-root", default=None, metavar="DIR", help="dataset root (default: $KDBENCH_HOME/data)")
    p.add_argument("--download", action="store_true", help="download missing datasets into the data root")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--eval-batch-size", type=int, default=1024, metavar="N",
                   help="batch size of evaluation passes (default: 1024; changes no number)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per worker (default: torch's; the pool executor splits the cores)")
    p.add_argument("--loader-workers", type=int, default=4, metavar="N",
                   help="decoding processes per split of an image folder streamed from disk (default: 4)")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train each run on N DDP processes: GPUs, or gloo processes on a CPU (default: the "
                   "recipe's devices, else 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log", action="append", default=None, metavar="NAME",
                   help="log every run to an experiment tracker: tensorboard, wandb, mlflow (repeatable; default: "
                   "the suite's loggers:, else none; --log none for none)")
    p.add_argument("--log-param", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="logger parameter (repeatable), e.g. --log-param wandb.mode=offline")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdbench", description="Knowledge-distillation benchmark harness.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite: train what is missing, then write its table")
    run.add_argument("suite", help="suite YAML file")
    run.add_argument("--dry-run", action="store_true", help="list the runs without training")
    run.add_argument("--force", action="store_true", help="recompute runs that already have a record")
    run.add_argument("--executor", default=None, help="executor: serial, pool, submitit, ray (default: the suite's, "
                     "else serial)")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="executor parameter (repeatable), e.g. --param devices=2")
    run.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                     help="epochs between resume checkpoints (0: none)")
    _add_logging(run)
    _add_common(run)
    _add_execution(run)
    _add_results(run)

    tune = sub.add_parser("tune", help="search a method entry's hyperparameters with Optuna (the suite's tune: block)")
    tune.add_argument("suite", help="suite YAML file with a tune: block (and a dataset val_fraction)")
    tune.add_argument("--study", default=None, help="only this study (its name, or its method entry's label)")
    tune.add_argument("--trials", type=int, default=None, metavar="N",
                      help="finished trials each study should hold (default: the study's `trials`)")
    tune.add_argument("--storage", default=None, metavar="URL",
                      help="Optuna storage: sqlite:///FILE, postgresql://..., mysql://..., or journal:FILE "
                      "(default: <runs>/<suite>/tune/studies.db)")
    tune.add_argument("--final", action="store_true",
                      help="then train the best values with every seed of the suite and table them beside the "
                      "untuned entry (test top-1)")
    tune.add_argument("--executor", default=None, help="executor for parallel trials: serial, pool, submitit, ray")
    tune.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="executor parameter")
    tune.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                      help="epochs between resume checkpoints (0: none)")
    _add_logging(tune)
    _add_common(tune)
    _add_execution(tune)
    _add_results(tune)

    lst = sub.add_parser("list", help="list registered components with their parameters")
    lst.add_argument("kind", nargs="?", choices=KINDS)
    _add_common(lst)

    tables = sub.add_parser("tables", help="regenerate a suite's table from its run records")
    tables.add_argument("suite", help="a suite name in the run store, a suite file, or a folder of records")
    tables.add_argument("--metric", choices=["best", "last"], default=None,
                        help="best- or last-epoch top-1 (default: the suite's choice, else best)")
    tables.add_argument("--layout", default=None, choices=LAYOUT_NAMES,
                        help="table layout (default: the suite's choice, else recognised from the records)")
    tables.add_argument("--out", default=None, metavar="DIR", help="default: <runs>/<suite>/")
    _add_runs(tables)

    score = sub.add_parser("score", help="score a suite's training set with a data-value estimator")
    score.add_argument("suite", help="suite YAML file: its dataset and the teacher of --pair")
    score.add_argument("--pair", type=int, default=0, help="index of the pair whose teacher scores (default 0)")
    score.add_argument("--estimator", action="append", default=None, metavar="NAME",
                       help="estimator (repeatable; 'all': every one the dataset can feed; default influence); "
                       "on a dataset with label noise, also how well each one flags the flipped labels")
    score.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="estimator parameter (repeatable), e.g. --param solver=ekfac")
    score.add_argument("--out", default=None, metavar="DIR", help="default: <runs>/scores/<suite>/")
    _add_common(score)
    _add_execution(score)

    teacher = sub.add_parser("teacher", help="train, list or evaluate teachers")
    tsub = teacher.add_subparsers(dest="teacher_command", required=True)
    ttrain = tsub.add_parser("train", help="train (or find) every teacher a suite needs")
    ttrain.add_argument("suite")
    _add_common(ttrain)
    _add_execution(ttrain)
    _add_logging(ttrain)
    tsub.add_parser("list", help="teachers stored under $KDBENCH_HOME")
    teval = tsub.add_parser("eval", help="load a checkpoint strictly and measure its test accuracy")
    teval.add_argument("checkpoint")
    teval.add_argument("--arch", required=True)
    teval.add_argument("--dataset", default="cifar100")
    _add_common(teval)
    _add_execution(teval)

    export = sub.add_parser("export-folder", help="write a dataset as an image folder (train/<class>/*.png, "
                            "val/<class>/*.png) for the streaming datasets")
    export.add_argument("dataset", help="a registered dataset held in memory, e.g. digits")
    export.add_argument("out", nargs="?", default=None,
                        help="a new folder (default: <data root>/<dataset>_folder)")
    export.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset parameter (repeatable), e.g. --param image_size=32")
    _add_common(export)
    _add_execution(export)

    publish = sub.add_parser("publish", help="copy a suite's finished runs into the published results")
    publish.add_argument("suite", help="a suite name in the run store, or its suite file")
    publish.add_argument("--replace", action="store_true",
                         help="replace published records that differ (the new record notes what it replaced)")
    publish.add_argument("--metric", choices=["best", "last"], default="best", help="for the leaderboard")
    _add_runs(publish)
    _add_results(publish)

    board = sub.add_parser("leaderboard", help="build the leaderboard CSVs and page from every published record")
    board.add_argument("--metric", choices=["best", "last"], default="best")
    _add_results(board)
    return parser


def _runs_root(args: argparse.Namespace) -> Path:
    return Path(args.runs) if args.runs else default_runs_root()


def _options(args: argparse.Namespace, **extra):
    from kdbench.run import RunOptions

    if args.eval_batch_size < 1:
        raise KdbenchError(f"--eval-batch-size must be at least 1, got {args.eval_batch_size}")
    if args.threads is not None and args.threads < 1:
        raise KdbenchError(f"--threads must be at least 1, got {args.threads}")
    if args.nproc is not None and args.nproc < 1:
        raise KdbenchError(f"--nproc must be at least 1, got {args.nproc}")
    if args.loader_workers < 0:
        raise KdbenchError(f"--loader-workers must be at least 0, got {args.loader_workers}")
    return RunOptions(
        runs_root=str(_runs_root(args)), data_root=args.data_root, download=args.download, device=args.device,
        quiet=args.quiet, eval_batch_size=args.eval_batch_size, threads=args.threads,
        loader_workers=args.loader_workers, nproc=args.nproc,
        extra_plugin_files=tuple(str(Path(p).resolve()) for p in args.plugin), **extra,
    )


def _plan(args: argparse.Namespace):
    from kdbench.plan import expand, load_suite
    from kdbench.registry import load_registry

    suite = load_suite(args.suite)
    registry = load_registry(suite.plugin_files + tuple(args.plugin))
    if getattr(args, "download", False):
        _download_weights(suite, registry)
    return expand(suite, registry), registry


def _download_weights(suite, registry) -> None:
    """With ``--download``: fetch the published teacher weights a suite names that are not cached yet."""
    from kdbench.plan.weights import download, weights_location

    for i, pair in enumerate(suite.config.pairs):
        if pair.weights and pair.teacher:
            model = registry.get_at(suite.where("pairs", i, "teacher"), "model", pair.teacher)
            path, url = weights_location(model, pair.weights, suite.where("pairs", i, "weights"))
            if not path.is_file():
                download(path, url)


def _print_table(console: Console, markdown: str, paths: list[Path]) -> None:
    console.print(markdown, markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths))


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from kdbench.run import runs_to_do
    from kdbench.store import RunStore, SuiteInfo

    plan, registry = _plan(args)
    store = RunStore(_runs_root(args))
    name, executor = _executor(args, plan.suite, registry)
    options = _options(args, force=args.force, checkpoint_every=args.checkpoint_every, executor=name,
                       loggers=_loggers(args, plan.suite, registry))
    if args.dry_run:
        todo = {s.key for s in runs_to_do(plan, options)}
        table = RichTable(title=f"{plan.suite.name}: {len(plan.runs)} runs")
        for col in ("key", "method", "pair", "seed", "status"):
            table.add_column(col)
        for s in plan.runs:
            table.add_row(s.key, s.label, s.pair, str(s.seed), "todo" if s.key in todo else "done")
        console.print(table)
        console.print(
            f"{len(plan.runs)} runs, {len(plan.runs) - len(todo)} already finished; "
            f"{len(plan.teachers)} teacher(s) to train or reuse; run store: {store.root}"
        )
        return 0
    info = SuiteInfo(name=plan.suite.name, description=plan.suite.config.description, file=str(plan.suite.path),
                     table=plan.suite.config.table.model_dump())
    return 1 if _execute_and_table(console, plan, info, options, executor, store, Path(args.results)) else 0


def _execute_and_table(console: Console, plan, info, options, executor, store, results: Path) -> int:
    """Run a plan through the executor with a progress line per job, then write its table; the failures."""
    from kdbench.run import execute_plan
    from kdbench.run.suite_progress import SuiteProgress

    store.write_suite_info(info)
    progress = SuiteProgress(len(plan.runs))
    for outcome in execute_plan(plan, options, executor):
        console.print(progress.line(outcome), markup=False, highlight=False)
    console.print(progress.summary())
    if any(store.suite_dir(plan.suite.name).glob("*/record.json")):
        _write_tables(console, store, plan.suite.name, results)
    return progress.failed


def _executor(args: argparse.Namespace, suite, registry) -> tuple[str, object]:
    """The executor: ``--executor`` / ``--param`` over the suite's ``executor:`` block, else serial."""
    entry = suite.config.executor
    name = args.executor or (entry.name if entry else "serial")
    same = entry is not None and entry.name == name
    params = {**(entry.params if same else {}), **_parse_params(args.param)}
    where = suite.where("executor") if same else "--executor"
    comp = registry.get_at(where, "executor", name)
    return name, comp.create(params, where, runs_root=str(_runs_root(args)))


def _loggers(args: argparse.Namespace, suite, registry) -> tuple:
    """The loggers: ``--log`` over the suite's ``loggers:`` (a name the suite lists keeps its parameters there),
    ``--log-param`` on top; none by default. Each is built once here, so a bad one fails before any run."""
    from kdbench.run.loggers import check_loggers
    from kdbench.run.options import LoggerRef

    listed = {entry.name: (i, entry) for i, entry in enumerate(suite.config.loggers)}
    names = list(dict.fromkeys(args.log if args.log is not None else listed))
    names = [] if names == ["none"] else names
    given: dict[str, dict[str, object]] = {}
    for key, value in _parse_params(args.log_param, "--log-param", "NAME.KEY=VALUE").items():
        name, dot, param = key.partition(".")
        if not dot or not param or name not in names:
            raise KdbenchError(f"--log-param {key}=...: expected NAME.KEY=VALUE for a chosen logger "
                               f"({', '.join(names) or 'none is chosen; add --log NAME'})")
        given.setdefault(name, {})[param] = value
    refs, places = [], []
    for name in names:
        index, entry = listed.get(name, (None, None))
        refs.append(LoggerRef(name, {**(entry.params if entry else {}), **given.get(name, {})}))
        places.append(suite.where("loggers", index) if entry is not None and name not in given else "--log")
    check_loggers(refs, registry, str(_runs_root(args)), lambda i: places[i])
    return tuple(refs)


def cmd_tune(args: argparse.Namespace, console: Console) -> int:
    from kdbench.plan import load_suite
    from kdbench.registry import load_registry
    from kdbench.run import WorkerFactory
    from kdbench.run.tune import check_studies, load, run_study, storage_url
    from kdbench.run.tune_report import report
    from kdbench.store import RunStore

    if args.trials is not None and args.trials < 1:
        raise KdbenchError(f"--trials must be at least 1, got {args.trials}")
    suite = load_suite(args.suite)
    registry = load_registry(suite.plugin_files + tuple(args.plugin))
    chosen = check_studies(suite, registry)
    if args.study is not None:
        chosen = [s for s in chosen if args.study in (s.name, s.label)]
        if not chosen:
            raise KdbenchError(f"--study {args.study}: the suite has no study of that name or label")
    name, executor = _executor(args, suite, registry)
    options = _options(args, checkpoint_every=args.checkpoint_every, executor=name,
                       loggers=_loggers(args, suite, registry))
    factory = WorkerFactory(options, suite.plugin_files)
    store = RunStore(_runs_root(args))
    failed = 0
    for study in chosen:
        url = storage_url(study, options, args.storage)
        trials = args.trials or study.entry.trials
        console.print(f"study {study.name}: {trials} trials of {study.label!r} on pair {study.entry.pair}, "
                      f"seed {study.seed}; storage {url}", markup=False, highlight=False)
        for outcome in run_study(study, url, trials, options, executor, factory):
            failed += outcome.status == "failed"
            text = outcome.detail if outcome.status != "failed" else f"failed: {outcome.error}"
            console.print(f"{outcome.label}: {text}", markup=False, highlight=False)
        optuna_study = load(study, url, study.entry.sampler.seed)
        out = store.tables_dir(suite.name) / "tune" / study.label
        result = report(study, optuna_study, out)
        console.print(f"study {study.name}: {result.complete} complete, {result.pruned} pruned, {result.failed} "
                      f"failed", markup=False, highlight=False)
        if result.best_value is not None:
            console.print(f"best validation top-1 {result.best_value:.2f}; as a suite entry:\n{result.fragment}",
                          markup=False, highlight=False)
        for note in result.notes:
            console.print(note, markup=False, highlight=False)
        console.print("wrote " + ", ".join(str(p) for p in result.paths) + f"; optuna-dashboard {url}",
                      markup=False, highlight=False)
        if args.final:
            failed += _tune_final(args, console, study, result.best_params, registry, options, executor, store)
    return 1 if failed else 0


def _tune_final(args: argparse.Namespace, console: Console, study, best: dict, registry, options, executor,
                store) -> int:
    """Train the best values and the untuned entry with every seed; table their test top-1 side by side."""
    from kdbench.plan.tune import final_plan
    from kdbench.store import SuiteInfo

    if not best:
        raise KdbenchError(f"study {study.name}: no complete trial yet, so nothing to train with --final")
    plan = final_plan(study, registry, best)
    info = SuiteInfo(name=plan.suite.name, description=f"{study.name}: tuned vs untuned", file=str(study.suite.path),
                     table={"metric": "best", "layout": "method_pair"})
    return _execute_and_table(console, plan, info, options, executor, store, Path(args.results))


def _write_tables(console: Console, store, suite: str, results: Path, metric: str | None = None,
                  layout: str | None = None, out: Path | None = None) -> None:
    """The suite's table in the run store, and, when the suite is published, yours beside the published."""
    from kdbench.store import RunStore, write_outputs
    from kdbench.tables import results_frame, write_suite_tables
    from kdbench.tables.reproduction import reproduction_table

    raw, out = store.suite_dir(suite), out or store.tables_dir(suite)
    table, paths = write_suite_tables(raw, out, metric, layout)
    _print_table(console, table.markdown, paths)
    published_raw = RunStore(results).suite_dir(suite)
    if published_raw.resolve() != raw.resolve() and any(published_raw.glob("*/record.json")):
        compared = reproduction_table(results_frame(raw), results_frame(published_raw), metric or "best")
        paths = write_outputs(out, {"reproduction.md": compared.markdown.encode(),
                                    "reproduction.csv": compared.tidy.to_csv(index=False).encode()})
        _print_table(console, compared.markdown.replace("### Yours vs published",
                                                        f"### Yours vs published ({published_raw})"), paths)


def _format_default(value: object) -> str:
    return "(required)" if value is REQUIRED else repr(value)


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    from kdbench.registry import load_registry

    registry = load_registry(tuple(args.plugin))
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        table = RichTable(title=f"{kind}s", show_lines=False)
        table.add_column("name", no_wrap=True)
        table.add_column("parameters (defaults)")
        table.add_column("version")
        table.add_column("plugin")
        table.add_column("description")
        for comp in (registry.get(kind, n) for n in registry.names(kind)):
            params = ", ".join(f"{k}={_format_default(v)}" for k, v in comp.parameters().items())
            table.add_row(comp.name, params, comp.version, comp.source, comp.description)
        console.print(table)
    return 0


def _suite_name(given: str) -> str:
    """A suite name from a name or a suite file."""
    if given.endswith((".yaml", ".yml")):
        from kdbench.plan import load_suite

        return load_suite(given).name
    return given


def cmd_tables(args: argparse.Namespace, console: Console) -> int:
    from kdbench.store import RunStore
    from kdbench.tables import write_suite_tables

    given = Path(args.suite)
    if given.is_dir():  # a folder of records: its table goes beside its raw/ folder
        out = Path(args.out) if args.out else given.parent.parent / given.name
        table, paths = write_suite_tables(given, out, args.metric, args.layout)
        _print_table(console, table.markdown, paths)
        return 0
    store = RunStore(_runs_root(args))
    name = _suite_name(args.suite)
    if not store.suite_dir(name).is_dir():
        raise KdbenchError(f"no suite {name!r} in the run store {store.root}: run it first, or name a record folder")
    out = Path(args.out) if args.out else store.tables_dir(name)
    table, paths = write_suite_tables(store.suite_dir(name), out, args.metric, args.layout)
    _print_table(console, table.markdown, paths)
    return 0


def _parse_params(items: list[str], option: str = "--param", form: str = "KEY=VALUE") -> dict[str, object]:
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KdbenchError(f"{option} expects {form}, got {item!r}")
        params[key] = yaml.safe_load(value)
    return params


def cmd_score(args: argparse.Namespace, console: Console) -> int:
    from kdbench.run import Worker

    plan, registry = _plan(args)
    teachers = {s.order[0]: s.teacher for s in plan.runs if s.teacher is not None}
    if args.pair not in teachers:
        raise KdbenchError(f"{plan.suite.path}: pair {args.pair} has no teacher to score with")
    tspec = teachers[args.pair]
    names = _estimator_names(args.estimator or ["influence"], registry, tspec.dataset.params)
    if len(names) > 1 and args.param:
        raise KdbenchError("--param goes with one --estimator; give each estimator its own kdbench score call")
    worker = Worker(_options(args), plan.suite.plugin_files)
    out = Path(args.out) if args.out else _runs_root(args) / "scores" / plan.suite.name
    flipped = worker.components.dataset(tspec.dataset).train_flipped
    detections = []
    for name in names:
        stored = _score_one(args, console, worker, registry, plan.suite.name, tspec, name, out)
        if flipped is not None:
            from kdbench.run.scoring import detection_of

            detections.append(detection_of(registry.get("estimator", name), stored, flipped))
    if detections:
        _write_detection(console, detections, tspec, plan.suite.name, out)
    return 0


def _estimator_names(given: list[str], registry, dataset_params: dict) -> list[str]:
    """The estimators asked for; ``all`` is every registered one that this dataset can feed (those that need
    a validation split only with a ``val_fraction``)."""
    if given != ["all"]:
        for name in given:
            registry.get("estimator", name)
        return list(dict.fromkeys(given))
    has_val = bool(dataset_params.get("val_fraction"))
    return [name for name in registry.names("estimator")
            if has_val or not getattr(registry.get("estimator", name).factory, "needs_validation", False)]


def _score_one(args: argparse.Namespace, console: Console, worker, registry, suite: str, tspec, name: str,
               out: Path):
    """Score with one estimator (from the cache when it has them), write its CSV and histogram, say so."""
    from kdbench.plan import ComponentRef, resolve_estimator
    from kdbench.tables.score_report import write_score_report

    comp = registry.get("estimator", name)
    params, _ = resolve_estimator(comp, _parse_params(args.param), 0, f"--estimator {name} --param")
    start = time.perf_counter()
    stored = worker.scorer.scores(tspec, ComponentRef(name, params, comp.version))
    elapsed = time.perf_counter() - start
    stem = f"{name}-{tspec.arch}-{stored.key}"
    settings = ", ".join(f"{k}={v}" for k, v in {**params, **stored.info}.items())
    caption = f"{suite}: {stored.values.shape[0]} training samples scored on teacher {tspec.arch}; {settings}"
    paths = write_score_report(stored, out, stem, f"{name} scores, {tspec.arch}", caption)
    direction = "higher" if stored.higher_to_teacher else "lower"
    console.print(
        f"{name} scored {stored.values.shape[0]} samples in {stored.seconds:.2f} s "
        f"(this call {elapsed:.2f} s, teacher and features included); {direction} scores go to the teacher"
    )
    if stored.info:
        console.print(f"settings used: {stored.info}", markup=False, highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return stored


def _write_detection(console: Console, detections: list, tspec, suite: str, out: Path) -> None:
    """The noise-detection table of the estimators scored here (Markdown and CSV beside the scores)."""
    from kdbench.store import write_outputs
    from kdbench.tables.detection import detection_table

    noise = tspec.dataset.label_noise
    caption = (f"{suite}: flagging the {noise.kind} label noise (rate {noise.rate}, seed {noise.seed}) of the "
               f"training set with each estimator's scores on teacher {tspec.arch}")
    table = detection_table(detections, caption)
    stem = f"detection-{tspec.arch}-{tspec.key}"
    paths = write_outputs(out, {f"{stem}.md": table.markdown.encode(),
                                f"{stem}.csv": table.tidy.to_csv(index=False).encode()})
    _print_table(console, table.markdown, paths)


def cmd_teacher(args: argparse.Namespace, console: Console) -> int:
    from kdbench.run import Worker
    from kdbench.store import TeacherStore, kdbench_home

    if args.teacher_command == "list":
        table = RichTable(title=f"teachers in {kdbench_home() / 'teachers'}")
        for col in ("key", "arch", "dataset", "epochs", "test top-1"):
            table.add_column(col)
        for r in TeacherStore().list():
            dataset = r.spec.dataset.name if r.spec else "?"
            epochs = str(r.spec.recipe.epochs) if r.spec and r.spec.recipe else "?"
            table.add_row(r.key, r.arch, dataset, epochs, f"{r.test_top1:.2f}")
        console.print(table)
        return 0
    if args.teacher_command == "train":
        plan, registry = _plan(args)
        worker = Worker(_options(args, loggers=_loggers(args, plan.suite, registry)), plan.suite.plugin_files)
        for tspec in plan.teachers:
            record = worker.teachers.get(tspec, plan.suite.name).record
            console.print(f"{tspec.arch} ({tspec.key}): test top-1 {record.test_top1:.2f}")
        if not plan.teachers:
            console.print("this suite trains no teacher (none, or all from checkpoints)")
        return 0
    return _teacher_eval(args, console)


def _teacher_eval(args: argparse.Namespace, console: Console) -> int:
    from kdbench.plan import DatasetRef, TeacherSpec, file_sha256
    from kdbench.run import Worker

    worker = Worker(_options(args))
    registry = worker.components.registry
    comp = registry.get("dataset", args.dataset)
    ckpt = Path(args.checkpoint).resolve()
    if not ckpt.is_file():
        raise KdbenchError(f"checkpoint not found: {ckpt}")
    arch = registry.get("model", args.arch)
    tspec = TeacherSpec(args.arch, arch.version, DatasetRef(args.dataset, comp.resolve({}), comp.version), None, 0,
                        str(ckpt), file_sha256(ckpt))
    record = worker.teachers.get(tspec).record
    console.print(f"{args.arch} from {ckpt}: test top-1 {record.test_top1:.2f} on {args.dataset}")
    return 0


def cmd_export_folder(args: argparse.Namespace, console: Console) -> int:
    from kdbench.contracts import ImageDataset
    from kdbench.plan import DatasetRef
    from kdbench.run import Worker
    from kdbench.store.image_folder import write_image_folder

    options = replace(_options(args), device="cpu")
    worker = Worker(options)
    comp = worker.components.registry.get("dataset", args.dataset)
    params = comp.resolve(_parse_params(args.param), where=f"dataset {args.dataset}")
    data = worker.components.dataset(DatasetRef(args.dataset, params, comp.version))
    if not isinstance(data, ImageDataset):
        raise KdbenchError(f"{args.dataset} is already an image folder on disk")
    out = Path(args.out) if args.out else options.data_path / f"{args.dataset}_folder"
    written = write_image_folder(data, out)
    console.print(f"wrote {written.train_images} training and {written.val_images} evaluation images "
                  f"of {written.classes} classes to {written.root}")
    return 0


def cmd_publish(args: argparse.Namespace, console: Console) -> int:
    from kdbench.store import RunStore, publish_suite
    from kdbench.tables import write_suite_tables

    runs, published = RunStore(_runs_root(args)), RunStore(args.results)
    name = _suite_name(args.suite)
    report = publish_suite(runs, published, name, replace=args.replace)
    console.print(f"published {name}: {len(report.added)} new, {len(report.replaced)} replaced, "
                  f"{len(report.unchanged)} already published as they are")
    table, paths = write_suite_tables(published.suite_dir(name), published.tables_dir(name))
    _print_table(console, table.markdown, paths)
    return _write_leaderboard(console, Path(args.results), args.metric)


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    return _write_leaderboard(console, Path(args.results), args.metric)


def _write_leaderboard(console: Console, results: Path, metric: str) -> int:
    from kdbench.store import RunStore
    from kdbench.tables.leaderboard_files import write_leaderboard

    boards, paths = write_leaderboard(RunStore(results), metric)
    for board in boards:
        console.print(f"{board.dataset}: {len(board.rows)} rows from {len(board.runs)} runs")
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


COMMANDS = {"run": cmd_run, "tune": cmd_tune, "list": cmd_list, "tables": cmd_tables, "score": cmd_score,
            "teacher": cmd_teacher, "export-folder": cmd_export_folder, "publish": cmd_publish,
            "leaderboard": cmd_leaderboard}


def one_line(text: str) -> str:
    """Non-printable characters (line breaks in a value) escaped, so a message is always one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"kdbench: warning: {one_line(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(soft_wrap=True)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return COMMANDS[args.command](args, console)
        except KdbenchError as exc:
            print(f"kdbench: error: {one_line(str(exc))}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("kdbench: interrupted; finished runs are kept, run the same command again to resume",
                  file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
