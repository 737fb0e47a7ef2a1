"""``kdbench check-results`` and ``kdbench verify``: results someone submits, checked before they are merged.

``check-results`` reads a results folder (every record against itself and its spec, every file against what
kdbench writes there, :mod:`kdbench.cli.expected_files`) and trains nothing; ``verify`` re-trains a seeded sample of a
suite's published records and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    Results,
    Threads,
    argument,
    console,
    option,
    run_options,
)
from kdbench.cli.expected_files import expected_files
from kdbench.errors import KdbenchError
from kdbench.plan import load_suite
from kdbench.run import RunOptions
from kdbench.run.verify import Verification, sample, verify_records
from kdbench.store import RunRecord, RunStore, iter_records
from kdbench.store.check_results import check_results as check_folder

DEFAULT_SAMPLE = 3
# Top-1 points. A verifier is rarely on the machine that wrote the records, and a run's numbers move between
# machines (README, "What reproduces"): the published quickstart's own replacement notes show the same runs on two
# 2-core "AMD EPYC" VMs up to 1.94 points apart (7 of digits' 360 test images). On the machine and threads that
# wrote a record they agree to the last digit, which --tolerance 0 asks for.
DEFAULT_TOLERANCE = 2.0


def check_results(
    folder: Annotated[str, argument(metavar="DIR", help="a results folder (it holds raw/), its raw/ folder, or one "
                                    "suite's raw/<suite> folder")],
) -> int:
    """check a results folder someone submits: records, numbers, files

    Checks a results folder before it is merged: every record valid; its key the hash of its spec (an edited spec
    or a renamed folder is caught) and its folder's; `best_top1`, `best_epoch`, `last_top1` as the per-epoch
    metrics give them; every number finite and in range; provenance (code revision, finish time, machine)
    present; and no file that kdbench does not write there: a derived table must be what `kdbench publish` and
    `kdbench leaderboard` write from the records. Prints one line per problem, `path: field: what is wrong` (path
    relative to DIR), and exits 2 when there is any. `DIR` is a results folder, its `raw/`, or `raw/<suite>`
    (then only the records are checked). Trains nothing and writes nothing there.
    """
    folder_path = Path(folder)
    report = check_folder(folder_path, expected_files)
    out = console()
    for problem in report.problems:
        _say(out, str(problem))
    what = f"{report.records} record(s) of {len(report.suites)} suite(s)"
    if not report.records and not report.problems:
        raise KdbenchError(f"{folder_path}: no run records to check")
    if report.problems:
        raise KdbenchError(f"{len(report.problems)} problem(s) in {folder_path} ({what}), one per line above")
    _say(out, f"{folder_path}: {what} checked, no problem")
    return 0


def verify(
    suite: Annotated[str, argument(metavar="SUITE", help="a suite file, or the name of a published suite")],
    sample_size: Annotated[int, option("--sample", min=1, metavar="N", help="published runs to re-train (default: "
                                       f"{DEFAULT_SAMPLE}; all of them when the suite has fewer)")] = DEFAULT_SAMPLE,
    seed: Annotated[int, option("--seed", metavar="S", help="seed of the draw, over the sorted keys (default: 0)")]
    = 0,
    tolerance: Annotated[float, option("--tolerance", min=0.0, metavar="T", help="top-1 points a re-run may differ "
                                       f"by (default: {DEFAULT_TOLERANCE}; 0: to the last digit, as on the machine "
                                       "and threads that wrote the records)")] = DEFAULT_TOLERANCE,
    results: Results = "results",
    plugin: Plugins = None,
    data_root: DataRoot = RunOptions.data_root,
    download: Download = RunOptions.download,
    device: Device = RunOptions.device,
    eval_batch_size: EvalBatchSize = RunOptions.eval_batch_size,
    threads: Threads = RunOptions.threads,
    loader_workers: LoaderWorkers = RunOptions.loader_workers,
    nproc: Nproc = RunOptions.nproc,
    quiet: Quiet = RunOptions.quiet,
) -> int:
    """re-train a sample of a suite's published runs and compare

    Re-trains `--sample N` of the suite's published records (under `results/raw/<suite>/`), drawn with `--seed S`
    from their sorted keys, each from the spec its record holds, in a temporary run store (never `runs/` or
    `results/`; teachers and scores come from `$KDBENCH_HOME`, or are made there first, as `kdbench run` does).
    Prints per run the published and re-run best top-1 and the Δ of the best and the last, and whether the re-run
    ran on the same machine set-up (CPU or GPU, kernels, torch build and threads) as the record; exits 1 when a
    Δ is beyond `--tolerance` (top-1 points), a re-run fails, or a record's spec no longer hashes to its key.
    """
    plugin_files: tuple[str, ...]
    name, plugin_files = suite, ()  # a name: the plugin files come from --plugin alone
    if suite.endswith((".yaml", ".yml")):  # a suite file: its name, and the plugin files it names, from here
        loaded = load_suite(suite)
        name, plugin_files = loaded.name, loaded.plugin_files
    raw = RunStore(results).suite_dir(name)
    published = list(iter_records(raw)) if raw.is_dir() else []
    if not published:
        raise KdbenchError(f"no published records of suite {name!r} under {raw}")
    chosen = sample(published, sample_size, seed)
    options = run_options(runs=None, data_root=data_root, download=download, device=device,
                          eval_batch_size=eval_batch_size, threads=threads, loader_workers=loader_workers, nproc=nproc,
                          quiet=quiet, plugin=plugin)
    out = console()
    _say(out, f"verify {name}: re-training {len(chosen)} of {len(published)} published runs (seed {seed}) from "
         f"{raw}; tolerance {tolerance:g} top-1 points")
    columns = _Columns(chosen)
    _say(out, columns.header())
    beyond = 0
    for checked in verify_records(chosen, options, plugin_files, tolerance):
        beyond += not checked.within
        _say(out, columns.row(checked))
    _say(out, f"{len(chosen) - beyond} of {len(chosen)} re-runs within {tolerance:g} points of the published best "
         f"and last top-1" + (f"; {beyond} beyond" if beyond else ""))
    return 1 if beyond else 0


class _Columns:
    """The verify table's columns, as wide as the sampled runs need: one line per run, printed as it finishes."""

    HEADS = ("key", "label", "pair", "seed", "published", "re-run", "Δ best", "Δ last", "machine", "verdict")

    RIGHT = frozenset({"seed", "published", "re-run", "Δ best", "Δ last"})  # numbers

    def __init__(self, records: list[RunRecord]) -> None:
        self.widths = [len(h) for h in self.HEADS]
        for record in records:
            for i, cell in enumerate((record.key, record.label, record.pair, str(record.seed))):
                self.widths[i] = max(self.widths[i], len(cell))
        self.widths[4:8] = [max(w, 7) for w in self.widths[4:8]]  # 100.00, +12.34

    def _line(self, cells: tuple[str, ...]) -> str:
        aligned = [f"{cell:>{width}}" if head in self.RIGHT else f"{cell:<{width}}"
                   for head, cell, width in zip(self.HEADS, cells, self.widths, strict=True)]
        return "  ".join(aligned).rstrip()

    def header(self) -> str:
        return self._line(self.HEADS)

    def row(self, checked: Verification) -> str:
        record, rerun = checked.published, checked.rerun
        machine = {True: "same", False: "other", None: "-"}[checked.same_machine]
        if checked.within:
            verdict = "ok"
        elif rerun is None:
            verdict = f"NOT COMPARED: {checked.error}"
        else:
            verdict = f"BEYOND {checked.tolerance:g}"
        return self._line((record.key, record.label, record.pair, str(record.seed), f"{record.best_top1:.2f}",
                           f"{rerun.best_top1:.2f}" if rerun else "-", _delta(checked.delta_best),
                           _delta(checked.delta_last), machine, verdict))


def _delta(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.1e}" if 0 < abs(value) < 0.005 else f"{value:+.2f}"


def _say(out: Console, text: str) -> None:
    """One line: a value with a line break in it (a label, a file name) is escaped, as the app escapes errors."""
    out.print("".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text), markup=False,
              highlight=False)
