"""``kdbench list`` and ``kdbench export-folder``: the registered components, and a dataset as an image folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from rich.table import Table as RichTable

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
    run_options,
)
from kdbench.contracts.hookspecs import KINDS
from kdbench.registry import REQUIRED, load_registry
from kdbench.run import RunOptions
from kdbench.run.image_export import export_image_folder

if TYPE_CHECKING:  # a type checker needs the kinds spelt out; Typer reads the choices off the Literal
    Kind = str
else:
    Kind = Literal[KINDS]


def list_components(
    kind: Annotated[Kind | None, argument(metavar="KIND", help="only this kind (default: every kind)")] = None,
    plugin: Plugins = None,
) -> int:
    """list registered components with their parameters

    Lists the registered components of a kind (or of every kind), with each one's parameters and defaults.
    """
    out = console()
    registry = load_registry(tuple(plugin or ()))
    for each in [kind] if kind else list(KINDS):
        table = RichTable(title=f"{each}s", show_lines=False)
        table.add_column("name", no_wrap=True)
        table.add_column("parameters (defaults)")
        table.add_column("version")
        table.add_column("plugin")
        table.add_column("description")
        for comp in (registry.get(each, n) for n in registry.names(each)):
            params = ", ".join(f"{k}={_format_default(v)}" for k, v in comp.parameters().items())
            table.add_row(comp.name, params, comp.version, comp.source, comp.description)
        out.print(table)
    return 0


def _format_default(value: object) -> str:
    return "(required)" if value is REQUIRED else repr(value)


def export_folder(
    dataset: Annotated[str, argument(metavar="DATASET", help="a registered dataset held in memory, e.g. digits")],
    out: Annotated[str | None, argument(metavar="OUT", help="a new folder (default: <data root>/<dataset>_folder)")]
    = None,
    param: Annotated[list[str] | None, option("--param", metavar="KEY=VALUE", help="dataset parameter (repeatable), "
                                              "e.g. --param image_size=32")] = None,
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
    """write a dataset as an image folder (train/<class>/*.png, val/<class>/*.png) for the streaming datasets

    Writes a dataset held in memory (digits, CIFAR, synthetic) as an image folder of PNG files, `train/<class>/`
    and `val/<class>/`, for the streamed `imagefolder` dataset (default: `<data root>/<dataset>_folder`).
    """
    options = run_options(runs=runs, data_root=data_root, download=download, device=device,
                          eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers, nproc=nproc,
                          quiet=quiet, plugin=plugin)
    written = export_image_folder(options, dataset, parse_params(param), Path(out) if out else None)
    console().print(f"wrote {written.train_images} training and {written.val_images} evaluation images "
                    f"of {written.classes} classes to {written.root}")
    return 0
