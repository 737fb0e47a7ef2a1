"""What several commands share: their options, the run options built from them, planning a suite."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
import yaml
from rich.console import Console

from kdbench.errors import KdbenchError
from kdbench.plan.suite_file import Suite, load_suite
from kdbench.plan.weights import download, weights_location
from kdbench.run.options import LoggerRef, RunOptions
from kdbench.store.home import default_runs_root

if TYPE_CHECKING:  # at run time imported where used: the registry and the plan's expansion import torch
    from kdbench.plan import Plan
    from kdbench.registry import Registry


def option(*names: str, **settings: Any) -> Any:
    """``typer.Option`` without Typer's ``[default: ...]``: each help text says what its default means."""
    return typer.Option(*names, show_default=False, **settings)


def argument(**settings: Any) -> Any:
    """``typer.Argument``, its help text saying what its default means (as :func:`option`)."""
    return typer.Argument(show_default=False, **settings)


# Options of several commands, one definition each. A repeatable option is a list, None when not given.
Plugins = Annotated[list[str] | None, option(
    "--plugin", metavar="FILE", help="load a single-file plugin (repeatable)")]
Runs = Annotated[str | None, option(
    "--runs", metavar="DIR", help="the run store of your own runs (default: $KDBENCH_RUNS, else ./runs)")]
Results = Annotated[str, option(
    "--results", metavar="DIR", help="the published results (default: ./results)")]
Metric = Literal["best", "last"]
Executor = Annotated[str | None, option(
    "--executor", metavar="NAME", help="executor: serial, pool, submitit, ray (default: the suite's, else serial)")]
ExecutorParams = Annotated[list[str] | None, option(
    "--param", metavar="KEY=VALUE", help="executor parameter (repeatable), e.g. --param devices=2")]
CheckpointEvery = Annotated[int, option(
    "--checkpoint-every", min=0, metavar="N",
    help=f"epochs between resume checkpoints (0: none; default: {RunOptions.checkpoint_every})")]
Log = Annotated[list[str] | None, option(
    "--log", metavar="NAME", help="log every run to an experiment tracker: tensorboard, wandb, mlflow (repeatable; "
    "default: the suite's loggers:, else none; --log none for none)")]
LogParams = Annotated[list[str] | None, option(
    "--log-param", metavar="NAME.KEY=VALUE", help="logger parameter (repeatable), e.g. --log-param wandb.mode=offline")]

# Where and how a command trains or evaluates: the fields of RunOptions (run_options below). A command's
# default for one of them is the RunOptions field itself (``device: Device = RunOptions.device``), and the
# help texts name it from there, so a default changed in RunOptions changes every command and its --help.
DataRoot = Annotated[str | None, option(
    "--data-root", metavar="DIR", help="dataset root (default: $KDBENCH_HOME/data)")]
Download = Annotated[bool, option(
    "--download", help="download missing datasets into the data root")]
Device = Annotated[str, option(
    "--device", metavar="DEVICE", help=f"auto | cpu | cuda | cuda:N (default: {RunOptions.device})")]
EvalBatchSize = Annotated[int, option(
    "--eval-batch-size", min=1, metavar="N",
    help=f"batch size of evaluation passes (default: {RunOptions.eval_batch_size}; changes no number)")]
Threads = Annotated[int | None, option(
    "--threads", min=1, metavar="N", help="torch threads per worker (default: torch's; the pool executor splits the "
    "cores)")]
LoaderWorkers = Annotated[int, option(
    "--loader-workers", min=0, metavar="N",
    help=f"decoding processes per split of an image folder streamed from disk (default: {RunOptions.loader_workers})")]
Nproc = Annotated[int | None, option(
    "--nproc", min=1, metavar="N",
    help="train each run on N DDP processes: GPUs, or gloo processes on a CPU (default: the recipe's devices, else 1)")]
Quiet = Annotated[bool, option(
    "--quiet", help="no progress bars")]
MemoryFormatName = Literal["channels_last", "contiguous"]
DEFAULT_MEMORY_FORMAT: MemoryFormatName = "channels_last" if RunOptions.channels_last else "contiguous"
MemoryFormat = Annotated[MemoryFormatName, option(
    "--memory-format", metavar="channels_last|contiguous",
    help="memory format of images and networks: other kernels, other last digits, the same keys (default: "
         f"{DEFAULT_MEMORY_FORMAT}; CPU records published before channels_last trained contiguous)")]


def console() -> Console:
    """Where a command prints (one per command, so it writes to the ``sys.stdout`` of the moment)."""
    return Console(soft_wrap=True)


def print_table(out: Console, markdown: str, paths: list[Path]) -> None:
    out.print(markdown, markup=False, highlight=False)
    out.print("wrote " + ", ".join(str(p) for p in paths))


def runs_root(runs: str | None) -> Path:
    return Path(runs) if runs else default_runs_root()


def run_options(*, runs: str | None, data_root: str | None, download: bool, device: str, eval_batch_size: int,
                threads: int | None, loader_workers: int, nproc: int | None, quiet: bool, plugin: list[str] | None,
                **extra: Any) -> RunOptions:
    """The execution options of a command (their ranges are checked by the options themselves)."""
    return RunOptions(
        runs_root=str(runs_root(runs)), data_root=data_root, download=download, device=device, quiet=quiet,
        eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers, nproc=nproc,
        extra_plugin_files=tuple(str(Path(p).resolve()) for p in plugin or ()), **extra,
    )


def parse_params(items: list[str] | None, option: str = "--param", form: str = "KEY=VALUE") -> dict[str, object]:
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KdbenchError(f"{option} expects {form}, got {item!r}")
        params[key] = yaml.safe_load(value)
    return params


def suite_name(given: str) -> str:
    """A suite name from a name or a suite file."""
    return load_suite(given).name if given.endswith((".yaml", ".yml")) else given


def plan_suite(suite_file: str, plugin: list[str] | None, download_weights: bool = False) -> tuple[Plan, Registry]:
    """The suite's plan and registry; with ``--download``, the published teacher weights it names fetched first."""
    from kdbench.plan import expand
    from kdbench.registry import load_registry

    suite = load_suite(suite_file)
    registry = load_registry(suite.plugin_files + tuple(plugin or ()))
    if download_weights:
        _download_weights(suite, registry)
    return expand(suite, registry), registry


def _download_weights(suite: Suite, registry: Registry) -> None:
    """Fetch the published teacher weights a suite names that are not cached yet."""
    for i, pair in enumerate(suite.config.pairs):
        if pair.weights and pair.teacher:
            model = registry.get_at(suite.where("pairs", i, "teacher"), "model", pair.teacher)
            path, url = weights_location(model, pair.weights, suite.where("pairs", i, "weights"))
            if not path.is_file():
                download(path, url)


def executor_of(executor: str | None, param: list[str] | None, suite: Suite, registry: Registry,
                runs: str | None) -> tuple[str, Any]:
    """The executor: ``--executor`` / ``--param`` over the suite's ``executor:`` block, else serial."""
    entry = suite.config.executor
    name = executor or (entry.name if entry else "serial")
    same = entry if entry is not None and entry.name == name else None  # the suite's block, for this executor
    params = {**(same.params if same else {}), **parse_params(param)}
    where = suite.where("executor") if same else "--executor"
    comp = registry.get_at(where, "executor", name)
    return name, comp.create(params, where, runs_root=str(runs_root(runs)))


def loggers_of(log: list[str] | None, log_param: list[str] | None, suite: Suite, registry: Registry,
               runs: str | None) -> tuple[LoggerRef, ...]:
    """The loggers: ``--log`` over the suite's ``loggers:`` (a name the suite lists keeps its parameters there),
    ``--log-param`` on top; none by default. Each is built once here, so a bad one fails before any run."""
    listed = {entry.name: (i, entry) for i, entry in enumerate(suite.config.loggers)}
    names = list(dict.fromkeys(log if log is not None else listed))
    names = [] if names == ["none"] else names
    given: dict[str, dict[str, object]] = {}
    for key, value in parse_params(log_param, "--log-param", "NAME.KEY=VALUE").items():
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
    from kdbench.run.loggers import check_loggers

    check_loggers(refs, registry, str(runs_root(runs)), lambda i: places[i])
    return tuple(refs)
