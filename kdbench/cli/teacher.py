"""``kdbench teacher train | list | eval``: the teachers a suite needs, the stored ones, a checkpoint's accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from rich.table import Table as RichTable

from kdbench.cli.common import (
    DataRoot,
    Device,
    Download,
    EvalBatchSize,
    LoaderWorkers,
    Log,
    LogParams,
    Nproc,
    Plugins,
    Quiet,
    Runs,
    Threads,
    argument,
    console,
    loggers_of,
    option,
    plan_suite,
    run_options,
)
from kdbench.errors import KdbenchError
from kdbench.plan import DatasetRef, TeacherSpec, file_sha256
from kdbench.run import RunOptions, Worker
from kdbench.store import TeacherStore, kdbench_home


def train(
    suite: Annotated[str, argument(metavar="SUITE", help="suite YAML file")],
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
    log: Log = None,
    log_param: LogParams = None,
) -> int:
    """train (or find) every teacher a suite needs

    Trains the teachers a suite needs, or finds them already trained under `$KDBENCH_HOME`.
    """
    out = console()
    plan, registry = plan_suite(suite, plugin, download)
    options = run_options(runs=runs, data_root=data_root, download=download, device=device,
                          eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers,
                          nproc=nproc, quiet=quiet, plugin=plugin,
                          loggers=loggers_of(log, log_param, plan.suite, registry, runs))
    worker = Worker(options, plan.suite.plugin_files)
    for tspec in plan.teachers:
        record = worker.teachers.get(tspec, plan.suite.name).record
        out.print(f"{tspec.arch} ({tspec.key}): test top-1 {record.test_top1:.2f}")
    if not plan.teachers:
        out.print("this suite trains no teacher (none, or all from checkpoints)")
    return 0


def list_teachers() -> int:
    """teachers stored under $KDBENCH_HOME

    Lists the stored teachers: key, architecture, dataset, epochs and test top-1.
    """
    table = RichTable(title=f"teachers in {kdbench_home() / 'teachers'}")
    for col in ("key", "arch", "dataset", "epochs", "test top-1"):
        table.add_column(col)
    for r in TeacherStore().list():
        dataset = r.spec.dataset.name if r.spec else "?"
        epochs = str(r.spec.recipe.epochs) if r.spec and r.spec.recipe else "?"
        table.add_row(r.key, r.arch, dataset, epochs, f"{r.test_top1:.2f}")
    console().print(table)
    return 0


def evaluate(
    checkpoint: Annotated[str, argument(metavar="CHECKPOINT", help="a checkpoint file of the model --arch")],
    arch: Annotated[str, option("--arch", metavar="ARCH", help="a registered model")],
    dataset: Annotated[str, option("--dataset", metavar="DATASET", help="a registered dataset (default: "
                                   "cifar100)")] = "cifar100",
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
    """load a checkpoint strictly and measure its test accuracy

    Checks a checkpoint: it loads it strictly and measures its test accuracy.
    """
    worker = Worker(run_options(runs=runs, data_root=data_root, download=download, device=device,
                                eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers,
                                nproc=nproc, quiet=quiet, plugin=plugin))
    registry = worker.components.registry
    comp = registry.get("dataset", dataset)
    ckpt = Path(checkpoint).resolve()
    if not ckpt.is_file():
        raise KdbenchError(f"checkpoint not found: {ckpt}")
    model = registry.get("model", arch)
    tspec = TeacherSpec(arch, model.version, DatasetRef(dataset, comp.resolve({}), comp.version), None, 0, str(ckpt),
                        file_sha256(ckpt))
    record = worker.teachers.get(tspec).record
    console().print(f"{arch} from {ckpt}: test top-1 {record.test_top1:.2f} on {dataset}")
    return 0
