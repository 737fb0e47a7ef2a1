"""``kdbench run`` and ``kdbench tune``: train a suite's runs, or search a method entry's hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from rich.console import Console
from rich.table import Table as RichTable

from kdbench.cli.common import (
    DEFAULT_MEMORY_FORMAT,
    CheckpointEvery,
    DataRoot,
    Device,
    Download,
    EvalBatchSize,
    Executor,
    ExecutorParams,
    LoaderWorkers,
    Log,
    LogParams,
    MemoryFormat,
    Nproc,
    Plugins,
    Quiet,
    Results,
    Runs,
    Threads,
    argument,
    console,
    executor_of,
    loggers_of,
    option,
    plan_suite,
    run_options,
    runs_root,
)
from kdbench.cli.results import write_tables
from kdbench.errors import KdbenchError
from kdbench.plan import Plan, load_suite
from kdbench.plan.spec import content_key
from kdbench.plan.tune import Study, final_plan
from kdbench.registry import Registry, load_registry
from kdbench.run import RunOptions, WorkerFactory, execute_plan, runs_to_do
from kdbench.run.suite_progress import SuiteProgress
from kdbench.run.tune import check_studies, load, run_study, storage_url
from kdbench.run.tune_report import report
from kdbench.store import RunStore, SuiteInfo


def run(
    suite: Annotated[str, argument(metavar="SUITE", help="suite YAML file")],
    dry_run: Annotated[bool, option("--dry-run", help="list the runs without training, then check that the "
                                    "data is there (exit 2 if not)")] = False,
    force: Annotated[bool, option("--force", help="recompute runs that already have a record")] = RunOptions.force,
    executor: Executor = None,
    param: ExecutorParams = None,
    checkpoint_every: CheckpointEvery = RunOptions.checkpoint_every,
    log: Log = None,
    log_param: LogParams = None,
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
    memory_format: MemoryFormat = DEFAULT_MEMORY_FORMAT,
    results: Results = "results",
) -> int:
    """run a suite: train what is missing, then write its table

    Trains every run of the suite that has no record yet in the run store, then writes and prints its table,
    and your numbers beside the published ones when the suite is published. A run is done when a finished record
    with its key exists in the run store, under this suite or another; `--dry-run` lists the runs with that
    status, then checks that the suite's data is there (exit 2, with the line the run would stop with, if not). A
    run saves a resume checkpoint every `--checkpoint-every` epochs
    (default 10; 0: none), so an interrupted run goes on from there when the same command runs again.
    `--log tensorboard|wandb|mlflow` (repeatable) also sends every run and teacher to an experiment tracker.
    `--quiet` hides the progress bars. `--memory-format contiguous` trains as kdbench did on a CPU before
    channels_last became the default there (to extend a suite published from such runs).
    """
    out = console()
    plan, registry = plan_suite(suite, plugin, download)
    store = RunStore(runs_root(runs))
    name, engine = executor_of(executor, param, plan.suite, registry, runs)
    options = run_options(runs=runs, data_root=data_root, download=download, device=device,
                          eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers,
                          nproc=nproc, quiet=quiet, plugin=plugin, force=force, checkpoint_every=checkpoint_every,
                          executor=name, loggers=loggers_of(log, log_param, plan.suite, registry, runs),
                          channels_last=memory_format == "channels_last")
    if dry_run:
        todo = {s.key for s in runs_to_do(plan, options)}
        table = RichTable(title=f"{plan.suite.name}: {len(plan.runs)} runs")
        for col in ("key", "method", "pair", "seed", "status"):
            table.add_column(col)
        for s in plan.runs:
            table.add_row(s.key, s.label, s.pair, str(s.seed), "todo" if s.key in todo else "done")
        out.print(table)
        out.print(
            f"{len(plan.runs)} runs, {len(plan.runs) - len(todo)} already finished; "
            f"{len(plan.teachers)} teacher(s) to train or reuse; run store: {store.root}"
        )
        _check_data(plan, registry, options)  # after the list: a plan is worth reading before the data is there
        return 0
    info = SuiteInfo(name=plan.suite.name, description=plan.suite.config.description, file=str(plan.suite.path),
                     table=plan.suite.config.table.model_dump())
    return 1 if _execute_and_table(out, plan, info, options, engine, store, Path(results)) else 0


def tune(
    suite: Annotated[str, argument(metavar="SUITE",
                                   help="suite YAML file with a tune: block (and a dataset val_fraction)")],
    study: Annotated[str | None, option("--study", metavar="NAME",
                                        help="only this study (its name, or its method entry's label)")] = None,
    trials: Annotated[int | None, option("--trials", min=1, metavar="N",
                                         help="finished trials each study should hold (default: the study's "
                                         "`trials`)")] = None,
    storage: Annotated[str | None, option(
        "--storage", metavar="URL", help="Optuna storage: sqlite:///FILE, postgresql://..., mysql://..., or "
        "journal:FILE (default: <runs>/<suite>/tune/studies.db)")] = None,
    final: Annotated[bool, option("--final", help="then train the best values with every seed of the suite and "
                                  "table them beside the untuned entry (test top-1)")] = False,
    executor: Annotated[str | None, option("--executor", metavar="NAME", help="executor for parallel trials: "
                                           "serial, pool, submitit, ray")] = None,
    param: Annotated[list[str] | None, option("--param", metavar="KEY=VALUE", help="executor parameter")] = None,
    checkpoint_every: CheckpointEvery = RunOptions.checkpoint_every,
    log: Log = None,
    log_param: LogParams = None,
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
    results: Results = "results",
) -> int:
    """search a method entry's hyperparameters with Optuna (the suite's tune: block)

    Runs the Optuna studies of the suite's `tune:` block (validation top-1, pruned per epoch), continuing them
    where they stopped; writes the best values as a suite entry, the trials as CSV and two plots, and with
    `--final` trains the best values with every seed beside the untuned entry.
    """
    out = console()
    loaded = load_suite(suite)
    registry = load_registry(loaded.plugin_files + tuple(plugin or ()))
    chosen = check_studies(loaded, registry)
    if study is not None:
        chosen = [s for s in chosen if study in (s.name, s.label)]
        if not chosen:
            raise KdbenchError(f"--study {study}: the suite has no study of that name or label")
    name, engine = executor_of(executor, param, loaded, registry, runs)
    options = run_options(runs=runs, data_root=data_root, download=download, device=device,
                          eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers,
                          nproc=nproc, quiet=quiet, plugin=plugin, checkpoint_every=checkpoint_every, executor=name,
                          loggers=loggers_of(log, log_param, loaded, registry, runs))
    factory = WorkerFactory(options, loaded.plugin_files)
    store = RunStore(runs_root(runs))
    failed = 0
    for chosen_study in chosen:
        url = storage_url(chosen_study, options, storage)
        count = trials or chosen_study.entry.trials
        _say(out, f"study {chosen_study.name}: {count} trials of {chosen_study.label!r} on pair "
             f"{chosen_study.entry.pair}, seed {chosen_study.seed}; storage {url}")
        for outcome in run_study(chosen_study, url, count, options, engine, factory):
            failed += outcome.status == "failed"
            text = outcome.detail if outcome.status != "failed" else (
                f"failed: {outcome.error}{f' · {outcome.detail}' if outcome.detail else ''}")  # where its traceback is
            _say(out, f"{outcome.label}: {text}")
        optuna_study = load(chosen_study, url, chosen_study.entry.sampler.seed)
        result = report(chosen_study, optuna_study, store.tables_dir(loaded.name) / "tune" / chosen_study.label)
        _say(out, f"study {chosen_study.name}: {result.complete} complete, {result.pruned} pruned, {result.failed} "
             f"failed")
        if result.best_value is not None:
            _say(out, f"best validation top-1 {result.best_value:.2f}; as a suite entry:\n{result.fragment}")
        for note in result.notes:
            _say(out, note)
        _say(out, "wrote " + ", ".join(str(p) for p in result.paths) + f"; optuna-dashboard {url}")
        if final:
            failed += _tune_final(out, chosen_study, result.best_params, registry, options, engine, store,
                                  Path(results))
    return 1 if failed else 0


def _say(out: Console, text: str) -> None:
    out.print(text, markup=False, highlight=False)


def _check_data(plan: Plan, registry: Registry, options: RunOptions) -> None:
    """What a dry run promises besides the list: the data the suite needs is there. Each dataset's own check looks
    for its files and reads none; one that is not there stops the dry run with the line the run would stop with."""
    datasets = {content_key(ref.identity()): ref for ref in [*(t.dataset for t in plan.teachers),
                                                             *(s.dataset for s in plan.runs)]}
    for ref in datasets.values():
        problem = registry.get("dataset", ref.name).missing_data(ref.params, root=options.data_path,
                                                                 download=options.download)
        if problem is not None:
            raise KdbenchError(problem)


def _execute_and_table(out: Console, plan: Plan, info: SuiteInfo, options: RunOptions, engine: Any, store: RunStore,
                       results: Path) -> int:
    """Run a plan through the executor with a progress line per job, then write its table; the failures."""
    store.write_suite_info(info)
    progress = SuiteProgress(len(plan.runs))
    for outcome in execute_plan(plan, options, engine):
        _say(out, progress.line(outcome))
    out.print(progress.summary())
    if any(store.suite_dir(plan.suite.name).glob("*/record.json")):
        write_tables(out, store, plan.suite.name, results)
    return progress.failed


def _tune_final(out: Console, study: Study, best: dict[str, Any], registry: Registry, options: RunOptions,
                engine: Any, store: RunStore, results: Path) -> int:
    """Train the best values and the untuned entry with every seed; table their test top-1 side by side."""
    if not best:
        raise KdbenchError(f"study {study.name}: no complete trial yet, so nothing to train with --final")
    plan = final_plan(study, registry, best)
    info = SuiteInfo(name=plan.suite.name, description=f"{study.name}: tuned vs untuned", file=str(study.suite.path),
                     table={"metric": "best", "layout": "method_pair"})
    return _execute_and_table(out, plan, info, options, engine, store, results)
