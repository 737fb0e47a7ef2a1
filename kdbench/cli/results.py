"""``kdbench tables``, ``publish`` and ``leaderboard``: tables from run records, and the published results.

``kdbench.tables`` is imported where a table is written, not at the top: it brings pandas and matplotlib, a
second on every start, and ``kdbench --help``, ``list`` or shell completion need neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

from rich.console import Console

import kdbench
from kdbench.cli.common import (
    Metric,
    Results,
    Runs,
    argument,
    console,
    option,
    plan_suite,
    print_table,
    runs_root,
    suite_name,
)
from kdbench.errors import KdbenchError, did_you_mean
from kdbench.plan import TableLayout
from kdbench.run.environment import git_revision
from kdbench.store import RunStore, iter_records, publish_suite, read_suite_info, suites_in
from kdbench.store.publish import paused_gc
from kdbench.store.published_files import one_per_run, published_files
from kdbench.store.release_check import check_release
from kdbench.store.releases import make_release, new_release_path, read_release, write_release


def tables(
    suite: Annotated[str, argument(metavar="SUITE",
                                   help="a suite name in the run store, a suite file, or a folder of records")],
    metric: Annotated[Metric | None, option(
        "--metric", metavar="best|last", help="best- or last-epoch top-1 (default: the suite's choice, else best)")]
    = None,
    layout: Annotated[TableLayout | None, option(
        "--layout", metavar="NAME", help=f"table layout: {', '.join(get_args(TableLayout))} (default: the suite's "
        "choice, else recognised from the records)")] = None,
    out: Annotated[str | None, option("--out", metavar="DIR", help="default: <runs>/<suite>/")] = None,
    runs: Runs = None,
    results: Results = "results",
) -> int:
    """regenerate a suite's table from its run records

    Rebuilds a suite's table (and its accuracy-vs-time plots) from its run records, and your numbers beside the
    published ones when the suite is published. `SUITE` is a suite name in the run store, a suite file, or a
    folder of records. When some of the suite's runs have no record yet, one line says how many have.
    """
    given = Path(suite)
    if given.is_dir():  # a folder of records: its table goes beside its raw/ folder
        raw, tables_dir = given, given.parent.parent / given.name
    else:
        store = RunStore(runs_root(runs))
        name = suite_name(suite)
        known_suite(store, name)
        raw, tables_dir = store.suite_dir(name), store.tables_dir(name)
    text = console()
    finished = finished_line(raw, suite if suite.endswith((".yaml", ".yml")) else None)
    if finished is not None:
        text.print(finished, markup=False, highlight=False)
    print_tables(text, raw, Path(out) if out else tables_dir, Path(results), metric, layout)
    return 0


def known_suite(store: RunStore, name: str) -> None:
    """A suite the run store holds, else one line naming the nearest suite it holds (exit 2)."""
    if store.suite_dir(name).is_dir():
        return
    known = suites_in(store)
    hint = did_you_mean(name, known) if known else ": it holds no suite yet; run one first, or name a record folder"
    raise KdbenchError(f"no suite {name!r} in the run store {store.root}{hint}")


def finished_line(raw: Path, suite_file: str | None = None) -> str | None:
    """"12 of 18 runs of quickstart finished; the table shows those" when some of the runs the suite plans have
    no record under ``raw`` yet. The plan comes from ``suite_file``, else from the file the suite's records were
    run from (saved beside them); when that file is gone, or no longer plans this suite, None: better nothing than
    a guess."""
    info = read_suite_info(raw)
    file = suite_file or (info.file if info else "")
    if not file or not Path(file).is_file():
        return None
    try:
        plan, _ = plan_suite(file, None)
    except KdbenchError:
        return None
    if plan.suite.name != raw.name:  # e.g. a tune study's final runs, saved with the file of the suite they tune
        return None
    recorded = {record.key for record in iter_records(raw)}
    done = sum(spec.key in recorded for spec in plan.runs)
    if done == len(plan.runs):
        return None
    return f"{done} of {len(plan.runs)} runs of {plan.suite.name} finished; the table shows those"


def publish(
    suite: Annotated[str, argument(metavar="SUITE", help="a suite name in the run store, or its suite file")],
    replace: Annotated[bool, option("--replace", help="replace published records that differ (the new record notes "
                                    "what it replaced)")] = False,
    metric: Annotated[Metric, option("--metric", metavar="best|last", help="for the leaderboard")] = "best",
    runs: Runs = None,
    results: Results = "results",
) -> int:
    """copy a suite's finished runs into the published results

    Copies the suite's finished records from the run store into `results/raw/<suite>/`, rebuilds
    `results/<suite>/`, the leaderboard and `results/runs.parquet`. A published record that differs from yours (the
    same run trained again) is replaced only with `--replace`, and the new record notes what it replaced.
    """
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: module docstring

    out = console()
    mine, published = RunStore(runs_root(runs)), RunStore(results)
    name = suite_name(suite)
    known_suite(mine, name)
    report = publish_suite(mine, published, name, replace=replace)
    out.print(f"published {name}: {len(report.added)} new, {len(report.replaced)} replaced, "
              f"{len(report.unchanged)} already published as they are")
    table, paths = write_suite_tables(published.suite_dir(name), published.tables_dir(name))
    print_table(out, table.markdown, paths)
    return write_leaderboard(out, Path(results), metric)


def leaderboard(
    metric: Annotated[Metric, option(
        "--metric", metavar="best|last", help="best- or last-epoch top-1 (default: best)")] = "best",
    release: Annotated[str | None, option(
        "--release", metavar="NAME", help="also write the release manifest results/releases/NAME.json (never "
        "overwritten) and show NAME on the page")] = None,
    check: Annotated[str | None, option(
        "--check", metavar="NAME", help="write nothing: say what changed in the published records since release "
        "NAME (exit 1 if anything did)")] = None,
    results: Results = "results",
) -> int:
    """build the leaderboard and runs.parquet from every published record; make or check a release

    Rebuilds `results/leaderboard/` and `results/runs.parquet` (every published record as one row) from every
    published record. `--release NAME` also writes `results/releases/NAME.json`: each record file's path, key and
    sha256, the code revision and the date; a release is never overwritten. `--check NAME` writes nothing: it
    reads the published records as they are now and prints one line per record file added, removed or changed
    since release NAME (with the numbers that changed), and exits 1 if any was.
    """
    if check is not None:
        if release is not None:
            raise KdbenchError("--check and --release go separately: check against a release, or make one")
        return check_against_release(console(), Path(results), check)
    return write_leaderboard(console(), Path(results), metric, release)


def write_leaderboard(out: Console, results: Path, metric: Metric, release: str | None = None) -> int:
    """The leaderboard and ``runs.parquet`` from the published records, read once; with ``release``, its
    manifest too (a name taken already is refused before anything is written)."""
    from kdbench.tables.leaderboard_files import write_leaderboard as write  # pandas, matplotlib: module docstring
    from kdbench.tables.runs_table import write_runs_table

    if release is not None:
        new_release_path(results, release)
    published = RunStore(results)
    # The one GC pause of the build: 10,000 records held, each collection would walk them all to free nothing
    # (the command: 19 s with collections, 12 s without).
    with paused_gc():
        files = published_files(published)
        manifest = None if release is None else make_release(
            release, files, code_revision=git_revision(), kdbench_version=kdbench.__version__, metric=metric)
        built_on = manifest.created.strftime("%Y-%m-%d") if manifest else None  # the page's date is the release's
        boards, paths = write(published, one_per_run(files), metric, release=release, built_on=built_on)
        paths.append(write_runs_table(results, files))
    for board in boards:
        out.print(f"{board.dataset}: {len(board.rows)} rows from {len(board.runs)} runs")
    if manifest is not None:
        paths.append(write_release(results, manifest))
        out.print(f"release {manifest.name}: {len(manifest.records)} record files, code revision "
                  f"{manifest.code_revision or 'unknown'}")
    out.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def check_against_release(out: Console, results: Path, name: str) -> int:
    """One line per record file that differs from release ``name``, then one line in sum; 1 when any differs."""
    release = read_release(results, name)
    check = check_release(results, release, published_files(RunStore(results)), git_revision())
    for difference in check.differences:
        out.print(difference.line, markup=False, highlight=False)
    out.print(check.summary, markup=False, highlight=False)
    return 1 if check.differences else 0


def write_tables(out: Console, store: RunStore, suite: str, results: Path) -> None:
    """The suite's table in the run store, and, when the suite is published, yours beside the published."""
    print_tables(out, store.suite_dir(suite), store.tables_dir(suite), results)


def print_tables(out: Console, raw: Path, tables_dir: Path, results: Path, metric: str | None = None,
                 layout: str | None = None) -> None:
    """Write and print the table of the records under ``raw`` (a suite's folder), then, when ``results`` holds
    published records of the same suite, yours beside them (``kdbench run`` and ``kdbench tables`` alike)."""
    from kdbench.tables import write_suite_tables  # pandas, matplotlib: module docstring
    from kdbench.tables.reproduction import write_reproduction

    table, paths = write_suite_tables(raw, tables_dir, metric, layout)
    print_table(out, table.markdown, paths)
    published_raw = RunStore(results).suite_dir(raw.name)
    compared = write_reproduction(raw, published_raw, tables_dir, metric)
    if compared is not None:
        block, paths = compared
        print_table(out, block.markdown.replace("### Yours vs published", f"### Yours vs published ({published_raw})"),
                    paths)
